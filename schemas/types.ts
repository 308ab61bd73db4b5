// TypeScript types for the JSON Schemas beside this file. The schemas are the contract;
// tests/unit/schemas/types.test.ts checks that these types and the schemas stay in step.

export type Side = 'edge' | 'core'

/** How the event reached nerve. */
export type Via =
  | 'falcosidekick'
  | 'falco_http_output'
  | 'cloudtrail_record'
  | 'cloudtrail_log_file'
  | 'eventbridge'
  | 'firehose'
  | 'kafka'
  | 'replay'

/** How the agent id was found (see DESIGN.md "Identity"). */
export type ResolvedBy = 'registry' | 'stitched' | 'workload' | 'principal' | 'host' | 'unresolved'

/** The identifiers an event carries; every field optional, none invented. */
export type IdentityFields = {
  k8s_namespace?: string
  k8s_pod?: string
  k8s_service_account?: string
  k8s_pod_uid?: string
  cluster?: string
  container_id?: string
  container_image?: string
  host?: string
  principal_arn?: string
  /** For assumed-role sessions: the role ARN (sessionContext.sessionIssuer.arn). */
  role_arn?: string
  session_name?: string
  access_key_id?: string
  account_id?: string
}

export type AgentRef = {
  id: string
  resolved_by: ResolvedBy
}

/** Falco priorities, most severe first (Falco's enum order: Emergency = 0 … Debug = 7). */
export const falcoPriorities = [
  'emergency',
  'alert',
  'critical',
  'error',
  'warning',
  'notice',
  'informational',
  'debug',
] as const
export type FalcoPriority = (typeof falcoPriorities)[number]

export type EdgeFields = {
  rule: string
  priority: FalcoPriority
  /** Falco source plugin: syscall, k8s_audit, … (aws_cloudtrail arrives as a core event). */
  source: string
  hostname: string
  tags: string[]
  output: string
  /** Falco output_fields as received (dotted keys kept; 19-digit integers kept as strings). */
  output_fields: Record<string, unknown>
  /** Falco `internal` messages (metrics snapshots, drops): kept and counted, never correlated. */
  internal: boolean
  process?: { name?: string; cmdline?: string; exepath?: string; parent?: string; pid?: number }
  network?: {
    remote_ip?: string
    remote_port?: number
    local_ip?: string
    local_port?: number
    proto?: string
  }
  file?: { path?: string }
  user?: { name?: string; uid?: number }
}

export type CoreFields = {
  /** `service:EventName`, e.g. `iam:AttachRolePolicy` (service = eventSource before `.amazonaws.com`). */
  action: string
  event_source: string
  event_name: string
  event_type: string
  read_only?: boolean
  error_code?: string
  error_message?: string
  principal_arn?: string
  /**
   * userIdentity.principalId: `AROA…:session-name` for a role's session, `AIDA…` for an IAM user, and for a
   * federated user `ACCOUNT:name`, a name its caller chose. What the call says, never an agent identifier.
   */
  principal_id?: string
  principal_type?: string
  session_issuer_arn?: string
  /** A failed call's: when its session was issued (sessionContext.attributes.creationDate), epoch ms. */
  session_created?: number
  access_key_id?: string
  source_ip?: string
  user_agent?: string
  region?: string
  account_id?: string
  /** ARNs of the resources the call named, when CloudTrail lists them. */
  resources: string[]
  /**
   * The one resource the request named, from its parameters (a secret id, a parameter name, a bucket, a
   * role, a function, an instance…), at most 256 characters: what the behavioural baseline remembers.
   */
  target?: string
  /**
   * What a successful revoke-shaped call revokes, read from its request once at ingest
   * (ingest/revoke-request.ts): the role of an `iam:PutRolePolicy` whose document is exactly the
   * deny-older-sessions policy, with that policy's `aws:TokenIssueTime` (epoch ms); the key of an
   * `iam:UpdateAccessKey` to Inactive or `iam:DeleteAccessKey`. Absent for every other call, and in events
   * an earlier nerve published.
   */
  revokes?: { kind: 'role' | 'access_key'; name: string; issued_before?: number }
  /** True when the call was made by nerve's own revoker (revoke.self_identities): indexed, never correlated. */
  by_nerve: boolean
  /** Temporary credentials this call issued (STS AssumeRole*, GetSessionToken, …): the identity-stitching key. */
  credentials?: { access_key_id: string; expires: number }
}

export type NormalizedEvent = {
  /** Edge: content hash stamped once at ingest; core: CloudTrail eventID. */
  id: string
  side: Side
  /** Event time, epoch ms. */
  time: number
  /** Nanoseconds within the millisecond (Falco keeps 9 digits; CloudTrail has none), for stable ordering. */
  time_ns: number
  /** The event's own time string, as received. */
  time_original: string
  /** When nerve accepted it, epoch ms (wall clock at ingest; informational, never used for matching). */
  received_at: number
  via: Via
  agent: AgentRef
  identity: IdentityFields
  edge?: EdgeFields
  core?: CoreFields
  /** The original item, for the sinks. */
  raw: unknown
}

export type ScoreReason = {
  /**
   * Bounded factor name: rule_severity, edge_priority, action_risk, failed_attempt, proximity,
   * baseline_no_history, baseline_novel_action, baseline_novel_resource, baseline_unusual_hour,
   * baseline_burst, baseline_routine, cap. The points of all reasons add up to the score.
   */
  factor: string
  points: number
  detail: string
}

export type AttackRef = { id: string; name?: string }

export type Correlation = {
  /** sha256 of (rule id, edge event id, core event id), hex: deterministic across replays. */
  id: string
  /** max(edge.time, core.time), epoch ms: when the pair became complete in event time. */
  time: number
  /** version: 12 hex digits of the rule's filters + window; changes when the rule does (R1). */
  rule: {
    id: string
    severity: number
    revoke: boolean
    version?: string
    /** The rule's MITRE ATT&CK tactics and techniques, with their names where known. */
    mitre?: { tactics: AttackRef[]; techniques: AttackRef[] }
  }
  agent: { id: string; resolved_by: ResolvedBy; identity: IdentityFields }
  edge: {
    event_id: string
    time: number
    rule: string
    priority: FalcoPriority
    output: string
    hostname: string
    source: string
    tags: string[]
    /** Identical alerts (same but for Falco's timestamp) folded into this one when it was emitted; absent when none. */
    repeats?: number
    /** With repeats: the latest of their times, epoch ms. The pair may be with any of them. */
    last_time?: number
  }
  core: {
    event_id: string
    time: number
    action: string
    principal: string
    /** The caller's userIdentity.principalId (NormalizedEvent core.principal_id); absent in older records. */
    principal_id?: string
    read_only?: boolean
    error_code?: string
    source_ip?: string
    region?: string
    account_id?: string
    /** The resource the request named (NormalizedEvent core.target). */
    target?: string
  }
  /** core.time − edge.time, ms. */
  delta_ms: number
  window: { before: number; after: number; grace: number }
  score: number
  reasons: ScoreReason[]
  /** The incident as of this correlation (first/last seen in event time, count, distinct signals ≤ 100). */
  incident: {
    id: string
    first_seen?: number
    last_seen?: number
    correlation_count?: number
    /** Correlations over the per-rule bound of the incident, counted but not emitted. */
    suppressed_count?: number
    signals?: string[]
    /** Incident ids this one now replaces: merged in by this correlation, or renamed by an earlier member. */
    merged?: string[]
  }
  /** Stream time − event time when each member arrived, ms (how late it came; tune grace with it). */
  lag_at_arrival?: { edge: number; core: number }
}

// ---- Configuration (schemas/config.schema.json), after runtime/load-config.ts applied defaults and
// turned every duration into milliseconds. Deep-frozen: components receive their slice, read-only.

export type Ms = number

export type WindowConfig = { before: Ms; after: Ms; grace: Ms }

export type AgentConfig = {
  id: string
  protected: boolean
  match: {
    k8s?: { cluster?: string; namespace?: string; pod?: string; service_account?: string }[]
    images?: string[]
    hosts?: string[]
    aws?: string[]
    access_keys?: string[]
  }
}

export type RuleConfig = {
  id: string
  description?: string
  edge: { rules?: string[]; min_priority?: FalcoPriority; tags?: string[]; sources?: string[] }
  core: { actions?: string[]; read_only?: boolean; error_codes?: string[] }
  window?: Partial<WindowConfig>
  severity: number
  revoke: boolean
  /** MITRE ATT&CK ids: tactics `TA0006`, techniques and sub-techniques `T1555`, `T1555.006`. */
  mitre?: { tactics?: string[]; techniques?: string[] }
}

export type RateConfig = { count: number; per: Ms }

export type WebhookTargetConfig = {
  url: string
  secret?: string
  secrets?: string[]
  ca_file?: string
  cert_file?: string
  key_file?: string
  timeout: Ms
  concurrency: number
}

export type HttpConfig = {
  host: string
  port: number
  body_limit_bytes: number
  firehose_body_limit_bytes: number
  decompressed_limit_bytes: number
  max_items: number
  max_depth: number
  headers_timeout: Ms
  request_timeout: Ms
  max_connections: number
  max_connections_per_client: number
  tls?: { cert_file: string; key_file: string; client_ca_file?: string }
}

export type KafkaConfig = {
  brokers: string[]
  client_id: string
  topic_prefix: string
  create_topics: boolean
  partitions: number
  replication_factor: number
  compression: 'none' | 'gzip'
  max_message_bytes: number
  session_timeout: Ms
  ssl?: { ca_file?: string; cert_file?: string; key_file?: string; reject_unauthorized: boolean }
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string }
  cloudtrail_topics: string[]
  cloudtrail_group: string
}

export type S3SqsConfig = {
  queues: string[]
  buckets: string[]
  wait_time: Ms
  visibility_timeout: Ms
  max_receives: number
  max_object_bytes: number
  object_timeout: Ms
  concurrency: number
}

export type ElasticsearchConfig = {
  url?: string
  api_key?: string
  username?: string
  password?: string
  ca_file?: string
  namespace: string
  index_events: boolean
  max_retries: number
}

export type Config = {
  data_dir: string
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' }
  http: HttpConfig
  ingest: {
    token?: string
    tokens: Partial<Record<'falco' | 'cloudtrail' | 'firehose' | 'read', string>>
    max_pending_publishes: number
    max_chained_links_per_workload: number
    max_issued_links_per_workload: number
    max_future_skew: Ms
    falco_spool_bytes: number
    falco_spool_after: Ms
    agent_budget: { alerts_per_rule_per_minute: number }
    s3_sqs: S3SqsConfig
  }
  bus: { partitions: number; retention: Ms; max_batch: number }
  kafka: KafkaConfig
  /** Kubernetes clusters by their Falco hosts; when set, the cluster is part of a workload's id. */
  clusters: { name: string; hosts: string[]; oidc_issuer?: string }[]
  agents: AgentConfig[]
  correlation: {
    window: WindowConfig
    /** Absent: the built-in rule pack. */
    rules?: RuleConfig[]
    /** Added to the pack in use (built-in or `rules`). */
    extra_rules?: RuleConfig[]
    max_events_per_agent: number
    memory_budget_bytes: number
    incident_gap: Ms
    clock_tolerance: Ms
    max_correlations_per_incident_rule: number
    checkpoint: { max_records: number; max_interval: Ms }
    baseline: {
      enabled: boolean
      history: Ms
      warmup: Ms
      routine_min: number
      burst_window: Ms
      burst_min: number
      memory_share: number
    }
  }
  revoke: {
    webhooks: WebhookTargetConfig[]
    min_score: number
    dry_run: boolean
    self_identities: string[]
    rate_limit: { per_agent: RateConfig; global: RateConfig }
    max_attempts: number
    max_backoff: Ms
  }
  sinks: {
    elasticsearch: ElasticsearchConfig
    store: { retention?: Ms; commit_interval: Ms }
    kibana: { url?: string; space?: string }
  }
}

/** One revoke decision or delivery attempt, as recorded by the revoke dispatcher (stored and indexed). */
export type RevokeOutcome = {
  /** Unique per outcome record: `${decision_id}:${sequence}`. */
  id: string
  /** The idempotency key of the revoke: one per incident (also the webhook-id). */
  decision_id: string
  /** Wall-clock time of this outcome, epoch ms. */
  time: number
  correlation_id: string
  incident_id: string
  agent_id: string
  /** sent: delivered 2xx; failed: gave up; suppressed: policy said no; dry_run: would have sent; pending: retrying. */
  status: 'pending' | 'sent' | 'failed' | 'suppressed' | 'dry_run'
  /** Why, in a bounded code (below_min_score, rule_not_revoking, protected_agent, rate_limited_agent, …). */
  reason: string
  detail?: string
  /** Target URL (no credentials), for delivery outcomes. */
  target?: string
  attempts: number
  http_status?: number
}

/** A learned credential link (DESIGN.md "Identity"): the key an STS call issued, and to whom. */
export type IdentityLink = {
  access_key_id: string
  k8s_namespace?: string
  k8s_service_account?: string
  k8s_pod?: string
  k8s_pod_uid?: string
  cluster?: string
  role_arn?: string
  /** IRSA: the OIDC issuer of the web identity (`oidc.eks.<region>.amazonaws.com/id/<id>`). */
  oidc_issuer?: string
  /** The linked key that signed the sts:AssumeRole issuing this one (role chaining). */
  chained_from?: string
  /** Event time of the issuing call, epoch ms. */
  issued_at: number
  /** Credential expiry, epoch ms. */
  expires: number
}
