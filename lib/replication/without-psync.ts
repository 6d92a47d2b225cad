/**
 * What a user can do when the source gives no replication stream (PSYNC refused, disabled or renamed
 * away), in the order to propose them. One list for the replication errors and the precheck, so every
 * message offers the same ways out.
 */
export const WITHOUT_PSYNC: readonly string[] = [
  'read the changes from keyspace events instead (--incremental-reader notifications; eventually equal, exact at cut-over after a repair round)',
  'run a full sync only (--sync-type full), which needs no replication access',
];

/** `or run a full sync only (…)`, to end a fix that first names the PSYNC remedies. */
export function orWithoutPsync(): string {
  return WITHOUT_PSYNC.map((way) => `or ${way}`).join(', ');
}

/** The remedy when PSYNC is unknown under the name we sent. */
export function renamedPsyncFix(command: 'PSYNC' | 'REPLCONF', sentAs: string | undefined): string {
  const flag = command === 'PSYNC' ? '--source-psync-command' : '--source-replconf-command';
  const field = command === 'PSYNC' ? 'source.psyncCommand' : 'source.replconfCommand';
  if (sentAs !== undefined) {
    return `check the name with your provider and correct ${flag} (${field}), ${orWithoutPsync()}`;
  }
  return (
    `if the provider renamed ${command} (ElastiCache: AWS support can enable it under an account-specific name), ` +
    `pass that name with ${flag} NAME (${field}); else enable ${command} (remove its rename-command), ${orWithoutPsync()}`
  );
}
