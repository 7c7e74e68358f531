/** Display helpers: figures in the units people read, from the APIs' units (bps, ms, credit strings). */

/** 2_500_000 → "2.50 Mb/s". */
export function bitrate(bps) {
  if (!bps) return '–';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

/** 83_000 → "1 min 23 s". */
export function duration(ms) {
  if (ms === undefined || ms === null) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** An ISO date-time in the reader's locale. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '–';
}

/** "12345678" (a decimal credit string, may exceed 2^53) → "12,345,678". */
export function credits(s) {
  try {
    return BigInt(s).toLocaleString();
  } catch {
    return String(s);
  }
}

/** An error for display: the gateway's message and code. */
export function errorText(err) {
  return err.code ? `${err.message} (${err.code})` : err.message;
}
