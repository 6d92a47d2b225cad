import { DtsError, isDtsError } from '../errors.ts';

export interface AwsCall {
  /** 'Step Functions', 'DynamoDB': the service named in messages. */
  service: string;
  /** The IAM actions the command needs, named when access is denied. */
  actions: string[];
  /** What the call was about (an ARN, a table), named in messages. */
  resource: string;
  /** Where the call went, named when it could not get there. */
  endpoint: string;
  /** Error names of this call with their [message, fix]. */
  known?: Record<string, [string, string]>;
}

const CREDENTIALS_FIX =
  'configure AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or aws sso login)';
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
]);

/**
 * An AWS SDK failure as one DtsError line with its fix. Errors that are not the SDK's (bugs) are returned
 * unchanged, so they still print with their stack.
 */
export function awsCallError(e: unknown, call: AwsCall): unknown {
  if (!(e instanceof Error) || isDtsError(e)) return e;
  const name = e.name;
  const said = oneLine(e.message);
  const known = call.known?.[name];
  if (known) return new DtsError(name, known[0], known[1], { cause: e });
  const fail = (code: string, message: string, fix: string) => new DtsError(code, message, fix, { cause: e });
  if (name === 'CredentialsProviderError') {
    return fail('AWS_CREDENTIALS', `no AWS credentials found (${said})`, CREDENTIALS_FIX);
  }
  if (said === 'Region is missing') {
    return fail('AWS_REGION', `no AWS region for ${call.service}`, 'pass --region, or set AWS_REGION');
  }
  if (['ExpiredTokenException', 'ExpiredToken', 'RequestExpired'].includes(name)) {
    return fail(
      'AWS_CREDENTIALS',
      `the AWS credentials have expired (${name})`,
      `refresh them: ${CREDENTIALS_FIX}`,
    );
  }
  if (['UnrecognizedClientException', 'InvalidSignatureException', 'InvalidClientTokenId'].includes(name)) {
    return fail(
      'AWS_CREDENTIALS',
      `AWS does not accept the credentials (${name}: ${said})`,
      `check them and the clock of this machine: ${CREDENTIALS_FIX}`,
    );
  }
  if (name === 'AccessDeniedException' || name === 'AccessDenied') {
    return fail(
      'AWS_ACCESS_DENIED',
      `AWS denied ${call.actions.join(', ')} on ${call.resource}: ${said}`,
      `grant ${call.actions.join(', ')} on ${call.resource} to the identity you use (README: IAM permissions for the CLI)`,
    );
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return fail(
      'AWS_UNREACHABLE',
      `cannot reach ${call.service} at ${call.endpoint} (${code})`,
      'check the network path to AWS (proxy, firewall, VPC endpoint), --region, and --endpoint-url if given',
    );
  }
  if (name === 'TimeoutError') {
    return fail(
      'AWS_UNREACHABLE',
      `${call.service} at ${call.endpoint} did not answer in time`,
      'retry; check the network path to AWS',
    );
  }
  if ('$metadata' in e || '$fault' in e) {
    return fail(
      'AWS_ERROR',
      `${call.service} refused the request on ${call.resource}: ${name}: ${said}`,
      'see the message above; the AWS documentation of the error names its causes',
    );
  }
  return e;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
