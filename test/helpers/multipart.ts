/** A strict multipart/mixed parser for tests (RFC 2046 framing, CRLF line ends). */
export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

export function boundaryOf(contentType: string | null): string {
  const m = /^multipart\/mixed;\s*boundary=([^;\s]+)$/i.exec(contentType ?? '');
  if (!m) throw new Error(`not multipart/mixed with a boundary: ${contentType}`);
  return m[1]!;
}

export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const parts: Part[] = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos !== 0) throw new Error('body does not start with the boundary');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return parts;
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new Error('boundary not followed by CRLF');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, headerEnd).toString().split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const length = Number(headers['content-length']);
    const start = headerEnd + 4;
    const partBody = body.subarray(start, start + length);
    if (body.subarray(start + length, start + length + 2).toString() !== '\r\n') throw new Error('part not followed by CRLF');
    parts.push({ headers, body: partBody });
    pos = start + length + 2;
    if (body.indexOf(delimiter, pos) !== pos) throw new Error('part length does not reach the next boundary');
  }
}
