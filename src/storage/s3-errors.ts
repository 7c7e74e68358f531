/**
 * Reading the errors of the AWS SDK for the S3 object store (s3-store.ts): a missing key,
 * a short loggable reason, and what a failed HeadBucket means for an operator. Never a
 * credential in a message.
 */

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A missing key: GetObject/CopyObject answer `NoSuchKey`, HeadObject (no body) `NotFound` / 404. */
export function isMissing(err: unknown): boolean {
  const e = err as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket');
}

/** A short reason from an SDK or network error: status, error name, message (never a credential). */
export function describeS3Error(err: unknown): string {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name ?? 'Error';
  const message = (e?.message ?? String(err)).slice(0, 300);
  const code = e?.code && e.code !== name ? ` ${e.code}` : '';
  return `${status ? `HTTP ${status} ` : ''}${name}${code}: ${message}`;
}

/**
 * What a failed HeadBucket means, for an operator: the bucket is missing, access is denied
 * (no or wrong credentials, or a policy without s3:ListBucket), the region is wrong, or the
 * endpoint is unreachable; each with what to do.
 */
export function explainBucketError(err: unknown, bucket: string, endpointName: string, timeoutMs: number): string {
  const e = err as SdkError;
  const status = e?.$metadata?.httpStatusCode;
  const where = `bucket ${bucket} at ${endpointName}`;
  if (e?.name === 'CredentialsProviderError') {
    return `no AWS credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run with an instance role)`;
  }
  if (status === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchBucket') {
    return `${where} does not exist: create it (e.g. \`aws s3 mb s3://${bucket}\` or \`mc mb <alias>/${bucket}\`) or set storage.s3.bucket (MEDIAGATE_STORAGE_S3_BUCKET) to an existing one`;
  }
  if (status === 403 || status === 401 || e?.name === 'Forbidden' || e?.name === 'AccessDenied' || e?.name === 'InvalidAccessKeyId' || e?.name === 'SignatureDoesNotMatch') {
    return `access denied to ${where} (HTTP ${status ?? '?'} ${e?.name ?? ''}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile or role), `
      + 'and that its policy allows s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, s3:DeleteObject on its objects';
  }
  if (status === 301 || status === 307 || e?.name === 'PermanentRedirect' || e?.name === 'AuthorizationHeaderMalformed') {
    return `${where} is in another region: set storage.s3.region (MEDIAGATE_STORAGE_S3_REGION) to the bucket's region`;
  }
  if (status === undefined) {
    const reason = e?.name === 'AbortError' || e?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describeS3Error(err);
    return `cannot reach the S3 endpoint ${endpointName} for bucket ${bucket} (${reason}): check storage.s3.endpoint (MEDIAGATE_STORAGE_S3_ENDPOINT), `
      + 'that the service is running, and the network between them';
  }
  return `${where} answered HeadBucket with ${describeS3Error(err)}`;
}
