/**
 * Progress of long work, for people and for machines: a one-line bar redrawn on a TTY, JSON lines
 * otherwise (CI logs, CloudWatch). Rates are averaged over a sliding window so the ETA is steady.
 *
 * One sink serves a whole task, whose counters are not one series: full-sync units run side by side,
 * each counting its own keys, and the verification after the copy counts again from zero. So a rate is
 * never taken from the difference of two snapshots' keysDone (that went negative when the verify's
 * first snapshot followed the copy's last one); it comes from the increments of each counter (one per
 * phase and unit), summed. A counter's first snapshot, and one lower than its last, start it again:
 * they count for nothing, so the rate never jumps when a counter appears mid-way or restarts.
 */
export interface ProgressSnapshot {
  phase: string;
  /** The unit being worked on, e.g. db0. */
  unit?: string;
  keysDone: number;
  /** From DBSIZE before the start: an estimate, since keys come and go. */
  keysTotal?: number;
  bytesDone: number;
}

export interface ProgressSink {
  update(s: ProgressSnapshot): void;
  /** A line of its own (the bar is cleared first). */
  log(message: string, fields?: Record<string, unknown>): void;
  finish(): void;
  /** The final figures as one JSON line, for machines (printed in JSON mode only). */
  result(fields: Record<string, unknown>): void;
}

interface Sample {
  t: number;
  /** Progress summed over every unit since the reporter started: it only grows. */
  keys: number;
  bytes: number;
}

const WINDOW_MS = 5000;

export class ProgressReporter implements ProgressSink {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private samples: Sample[] = [];
  /** Each counter's last values (by phase and unit), to take its increments from. */
  private readonly counters = new Map<string, { keys: number; bytes: number }>();
  private keysProgress = 0;
  private bytesProgress = 0;
  private last?: ProgressSnapshot;
  private lastPrint = 0;
  private barShown = false;

  constructor(
    options: {
      out?: NodeJS.WriteStream;
      tty?: boolean;
      intervalMs?: number;
      /** The span rates are averaged over (default 5 s). */
      windowMs?: number;
      /** The clock, in ms (tests step it instead of waiting). */
      now?: () => number;
    } = {},
  ) {
    this.out = options.out ?? process.stderr;
    this.now = options.now ?? (() => performance.now());
    this.tty = options.tty ?? Boolean(this.out.isTTY);
    this.intervalMs = options.intervalMs ?? (this.tty ? 200 : 2000);
    this.windowMs = options.windowMs ?? WINDOW_MS;
  }

  update(s: ProgressSnapshot): void {
    const now = this.now();
    this.last = s;
    this.count(s);
    this.samples.push({ t: now, keys: this.keysProgress, bytes: this.bytesProgress });
    while (this.samples.length > 2 && now - this.samples[0]!.t > this.windowMs) this.samples.shift();
    if (now - this.lastPrint < this.intervalMs) return;
    this.lastPrint = now;
    this.print(s);
  }

  log(message: string, fields: Record<string, unknown> = {}): void {
    if (this.tty) {
      this.clearBar();
      this.out.write(`${message}\n`);
      if (this.last) this.print(this.last);
    } else {
      this.out.write(`${JSON.stringify({ time: new Date().toISOString(), msg: message, ...fields })}\n`);
    }
  }

  result(fields: Record<string, unknown>): void {
    if (!this.tty)
      this.out.write(`${JSON.stringify({ time: new Date().toISOString(), msg: 'summary', ...fields })}\n`);
  }

  finish(): void {
    if (this.last) this.print(this.last);
    this.last = undefined;
    // Whatever reports next (the verify after the copy) is measured from its own start.
    this.samples = [];
    this.counters.clear();
    if (this.tty && this.barShown) this.out.write('\n');
    this.barShown = false;
  }

  /** keys/s and bytes/s over the last few seconds. */
  rates(): { keysPerSecond: number; bytesPerSecond: number } {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (!a || !b || b.t - a.t < 1) return { keysPerSecond: 0, bytesPerSecond: 0 };
    const dt = (b.t - a.t) / 1000;
    return { keysPerSecond: (b.keys - a.keys) / dt, bytesPerSecond: (b.bytes - a.bytes) / dt };
  }

  /** Adds the snapshot's increments over its counter's previous snapshot. */
  private count(s: ProgressSnapshot): void {
    const id = `${s.phase}\0${s.unit ?? ''}`;
    const prev = this.counters.get(id);
    this.counters.set(id, { keys: s.keysDone, bytes: s.bytesDone });
    if (!prev) return;
    if (s.keysDone >= prev.keys) this.keysProgress += s.keysDone - prev.keys;
    if (s.bytesDone >= prev.bytes) this.bytesProgress += s.bytesDone - prev.bytes;
  }

  private print(s: ProgressSnapshot): void {
    const { keysPerSecond, bytesPerSecond } = this.rates();
    const remaining = s.keysTotal !== undefined ? Math.max(0, s.keysTotal - s.keysDone) : undefined;
    const etaSeconds =
      remaining !== undefined && keysPerSecond > 0 ? Math.round(remaining / keysPerSecond) : undefined;
    if (!this.tty) {
      this.out.write(
        `${JSON.stringify({
          time: new Date().toISOString(),
          phase: s.phase,
          unit: s.unit,
          keys: s.keysDone,
          keysTotal: s.keysTotal,
          bytes: s.bytesDone,
          keysPerSecond: Math.round(keysPerSecond),
          bytesPerSecond: Math.round(bytesPerSecond),
          etaSeconds,
        })}\n`,
      );
      return;
    }
    const frac = s.keysTotal ? Math.min(1, s.keysDone / s.keysTotal) : undefined;
    const width = 24;
    const bar =
      frac === undefined ? '' : `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${pct(frac)} `;
    const line =
      `${s.phase}${s.unit ? ` ${s.unit}` : ''} ${bar}` +
      `${s.keysDone.toLocaleString('en-US')}${s.keysTotal ? `/${s.keysTotal.toLocaleString('en-US')}` : ''} keys, ` +
      `${mb(s.bytesDone)} MB, ${Math.round(keysPerSecond).toLocaleString('en-US')} keys/s, ` +
      `${mb(bytesPerSecond)} MB/s${etaSeconds !== undefined ? `, ETA ${duration(etaSeconds)}` : ''}`;
    this.clearBar();
    // A pseudo-terminal may report 0 columns: then assume a common width rather than cut the line short.
    this.out.write(line.slice(0, Math.max(40, (this.out.columns || 120) - 1)));
    this.barShown = true;
  }

  private clearBar(): void {
    if (this.barShown) this.out.write('\r\x1b[2K');
    this.barShown = false;
  }
}

/** A sink that prints nothing (library use, tests). */
export const silentProgress: ProgressSink = { update() {}, log() {}, finish() {}, result() {} };

function pct(f: number): string {
  return `${(f * 100).toFixed(1)}%`;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
