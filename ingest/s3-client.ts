// Builds the AWS SDK v3 clients nerve reads CloudTrail with (S3 objects, SQS notifications) the way every
// other AWS tool on the host would: the SDK's default credential chain (environment, shared profile, SSO,
// web identity for IRSA / Pod Identity, ECS and EC2 metadata) and the SDK's own endpoint variables
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS, then AWS_ENDPOINT_URL), so LocalStack-style endpoints work
// without a line of nerve config. With an S3 endpoint set, requests are path-style (`/bucket/key`): the
// stand-ins do not serve virtual-hosted buckets. Nothing here reads process.env: the caller hands it in.
import { S3Client } from '@aws-sdk/client-s3'
import { SQSClient } from '@aws-sdk/client-sqs'

export type AwsClientOptions = {
  /** The environment the endpoint variables are read from (the composition root passes process.env). */
  env?: Readonly<Record<string, string | undefined>>
  /** Overrides the SDK's region chain (AWS_REGION, the profile's region). */
  region?: string
  /** Used when neither `region` nor the SDK's chain names one. */
  fallbackRegion?: string
  /** Static credentials instead of the default chain (tests against a loopback stand-in). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** Attempts per request, the SDK's own retry (default 3). */
  maxAttempts?: number
}

export type AwsClients = { s3: S3Client; sqs: SQSClient; close(): void }

const defaultFallbackRegion = 'us-east-1'

/** The endpoint the SDK would pick from the environment for `service` ('S3' or 'SQS'), if any. */
export function endpointFromEnv(
  service: 'S3' | 'SQS',
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true') return undefined
  const value = env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL
  return value ? value : undefined
}

/** The SDK's region chain with a fallback: a missing region must not stop a reader of full queue URLs. */
function regionProvider(options: AwsClientOptions): string | (() => Promise<string>) {
  if (options.region) return options.region
  const fallback = options.fallbackRegion ?? defaultFallbackRegion
  let resolved: Promise<string> | undefined
  return () => {
    resolved ??= (async () => {
      const probe = new SQSClient({})
      try {
        return (await probe.config.region()) || fallback
      } catch {
        return fallback
      } finally {
        probe.destroy()
      }
    })()
    return resolved
  }
}

export function createAwsClients(options: AwsClientOptions = {}): AwsClients {
  const env = options.env ?? {}
  const region = regionProvider(options)
  const common = {
    region,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 3,
  }
  const s3Endpoint = endpointFromEnv('S3', env)
  const sqsEndpoint = endpointFromEnv('SQS', env)
  const s3 = new S3Client({
    ...common,
    ...(s3Endpoint ? { endpoint: s3Endpoint, forcePathStyle: true } : {}),
    // CloudTrail buckets often live in the log-archive account's region, not the reader's.
    followRegionRedirects: true,
  })
  // With an explicit endpoint the SDK sends every call there; without one it follows each QueueUrl's host.
  const sqs = new SQSClient({ ...common, ...(sqsEndpoint ? { endpoint: sqsEndpoint } : {}) })
  return {
    s3,
    sqs,
    close: () => {
      s3.destroy()
      sqs.destroy()
    },
  }
}
