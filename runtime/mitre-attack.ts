// MITRE ATT&CK (Enterprise, cloud matrix) names for the tactic and technique ids nerve's rules carry.
// Shared by the correlator (it puts id and name in each correlation) and the ECS sink (threat.*).
// An id missing here is still carried; only its name is then left out.

export const attackTactics: Readonly<Record<string, string>> = {
  TA0001: 'Initial Access',
  TA0002: 'Execution',
  TA0003: 'Persistence',
  TA0004: 'Privilege Escalation',
  TA0005: 'Defense Evasion',
  TA0006: 'Credential Access',
  TA0007: 'Discovery',
  TA0008: 'Lateral Movement',
  TA0009: 'Collection',
  TA0010: 'Exfiltration',
  TA0011: 'Command and Control',
  TA0040: 'Impact',
}

export const attackTechniques: Readonly<Record<string, string>> = {
  T1021: 'Remote Services',
  'T1021.004': 'SSH',
  'T1021.007': 'Cloud Services',
  T1053: 'Scheduled Task/Job',
  T1059: 'Command and Scripting Interpreter',
  'T1059.009': 'Cloud API',
  T1078: 'Valid Accounts',
  'T1078.004': 'Cloud Accounts',
  T1098: 'Account Manipulation',
  'T1098.001': 'Additional Cloud Credentials',
  'T1098.003': 'Additional Cloud Roles',
  'T1098.004': 'SSH Authorized Keys',
  T1136: 'Create Account',
  'T1136.003': 'Cloud Account',
  T1485: 'Data Destruction',
  T1496: 'Resource Hijacking',
  'T1496.001': 'Compute Hijacking',
  'T1496.004': 'Cloud Service Hijacking',
  T1537: 'Transfer Data to Cloud Account',
  T1546: 'Event Triggered Execution',
  T1550: 'Use Alternate Authentication Material',
  'T1550.001': 'Application Access Token',
  T1548: 'Abuse Elevation Control Mechanism',
  'T1548.005': 'Temporary Elevated Cloud Access',
  T1552: 'Unsecured Credentials',
  'T1552.005': 'Cloud Instance Metadata API',
  T1555: 'Credentials from Password Stores',
  'T1555.006': 'Cloud Secrets Management Stores',
  T1562: 'Impair Defenses',
  'T1562.007': 'Disable or Modify Cloud Firewall',
  'T1562.008': 'Disable or Modify Cloud Logs',
  T1578: 'Modify Cloud Compute Infrastructure',
  'T1578.002': 'Create Cloud Instance',
  T1580: 'Cloud Infrastructure Discovery',
  T1610: 'Deploy Container',
  T1648: 'Serverless Execution',
  T1651: 'Cloud Administration Command',
  T1666: 'Modify Cloud Resource Hierarchy',
}

export const tacticIdPattern = /^TA\d{4}$/
export const techniqueIdPattern = /^T\d{4}(\.\d{3})?$/
