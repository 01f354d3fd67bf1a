// Numbers and verdicts in words.

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function ms(n: number): string {
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** Why an execution failed, in words a person reads. */
export function reasonInWords(reason: string | undefined, timeoutMs?: number, memoryBytes?: number): string {
  switch (reason) {
    case 'runtime_error':
      return 'the script exited with an error';
    case 'timeout':
      return timeoutMs ? `time limit of ${ms(timeoutMs)} reached` : 'time limit reached';
    case 'memory_limit':
      return memoryBytes ? `memory limit of ${bytes(memoryBytes)} reached` : 'memory limit reached';
    case 'output_limit':
      return 'the script wrote more output than allowed';
    case 'cancelled':
      return 'cancelled';
    case 'system_error':
      return 'the platform could not run it (not your script’s fault)';
    default:
      return reason ? reason.replace(/_/g, ' ') : 'unknown reason';
  }
}

export function time(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** A compact date and time, for tables (the full one is on the permalink). */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}
