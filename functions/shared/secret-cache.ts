import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DtsError } from '../../lib/errors.ts';

/** Long enough to spare Secrets Manager on every CopyChunk, short enough that a rotated password is picked up. */
const TTL_MS = 5 * 60_000;

let client: SecretsManagerClient | undefined;
const cache = new Map<string, { value: string; expires: number }>();

/** A secret's plain-text value, cached for the life of the function instance. */
export async function secretValue(arn: string): Promise<string> {
  const hit = cache.get(arn);
  if (hit && hit.expires > Date.now()) return hit.value;
  client ??= new SecretsManagerClient({});
  let value: string | undefined;
  try {
    value = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
  } catch (e) {
    const name = e instanceof Error ? e.name : 'Error';
    throw new DtsError(
      'SECRET_UNREADABLE',
      `secret ${arn} could not be read (${name})`,
      'check the ARN, and that the secret name starts with the prefix the stack allows (secretNamePrefix)',
      { cause: e },
    );
  }
  if (value === undefined) {
    throw new DtsError(
      'SECRET_NOT_TEXT',
      `secret ${arn} has no plain-text value`,
      'store the password as the plain-text value of the secret',
    );
  }
  cache.set(arn, { value, expires: Date.now() + TTL_MS });
  return value;
}
