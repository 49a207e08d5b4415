// Identifiers shared with package.json's `contributes` (keep the two in step:
// the in-host tests check every command listed there is registered).

export const INSPECTOR_VIEW_TYPE = 'backdoorAudit.modelInspector';
export const AUDIT_PANEL_TYPE = 'backdoorAudit.auditPanel';
export const SCAN_PANEL_TYPE = 'backdoorAudit.scanPanel';
export const AUDITS_VIEW = 'backdoorAudit.audits';

export const COMMANDS = {
  inspect: 'backdoorAudit.inspect',
  audit: 'backdoorAudit.audit',
  scan: 'backdoorAudit.scan',
  openDemo: 'backdoorAudit.openDemo',
  showLog: 'backdoorAudit.showLog',
  openReport: 'backdoorAudit.openReport',
  revealRepaired: 'backdoorAudit.revealRepaired',
  rerun: 'backdoorAudit.rerun',
  refreshAudits: 'backdoorAudit.refreshAudits',
  changeArchitecture: 'backdoorAudit.changeArchitecture',
} as const;
