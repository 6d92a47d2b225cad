/** The RDB format version of a DUMP payload: the two bytes before its 8-byte CRC64, little endian. */
export function payloadRdbVersion(payload: Buffer): number | undefined {
  if (payload.length < 10) return undefined;
  return payload.readUInt16LE(payload.length - 10);
}

/** [first release, newest RDB version it reads]: RESTORE refuses any payload newer than that. */
const RDB_BY_RELEASE: readonly [number, number][] = [
  [70400, 12],
  [70200, 11],
  [70000, 10],
  [50000, 9],
  [40000, 8],
  [30200, 7],
  [1, 6],
];

/** The newest RDB version a server reads, from INFO's version number (major*10000+minor*100+patch). */
export function rdbVersionOfRelease(versionNum: number): number | undefined {
  if (versionNum <= 0) return undefined;
  return RDB_BY_RELEASE.find(([from]) => versionNum >= from)?.[1];
}
