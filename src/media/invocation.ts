/**
 * A library-neutral description of one ffmpeg process: one input (plus optional further
 * inputs, e.g. a watermark image), one optional
 * `-filter_complex` graph, any number of file outputs. The argument builder
 * (ladder-args.ts) produces it; the runner (ffmpeg-runner.ts) executes it.
 */

/** One file output of an ffmpeg command: its options (each flag and value a separate element) and its path. */
export interface FfmpegOutput {
  readonly options: readonly string[];
  /** Absolute file path (no protocol prefix). */
  readonly path: string;
}

/**
 * One ffmpeg process.
 *
 * Global options (`-nostdin`, `-loglevel`, `-copyts`, ...) go in `inputOptions`: ffmpeg
 * recognizes global options at any position, and fluent-ffmpeg has no public setter for
 * them, so placing them before `-i` keeps both forms identical.
 */
export interface FfmpegInvocation {
  /** Global options and options for the single input, placed before `-i`. */
  readonly inputOptions: readonly string[];
  /** Absolute input file path. */
  readonly inputPath: string;
  /**
   * Further inputs after the first (ffmpeg input 1, 2, ...), each with its own input options
   * (a watermark image: `-protocol_whitelist file -f png_pipe`). Absent: none.
   */
  readonly extraInputs?: readonly { readonly options: readonly string[]; readonly path: string }[];
  /** The `-filter_complex` graph; empty string for none. */
  readonly filterComplex: string;
  readonly outputs: readonly FfmpegOutput[];
}

/**
 * The exact argument vector (without the `ffmpeg` program name) of an invocation, in the
 * order fluent-ffmpeg 2.1.3 builds it (`FfmpegCommand#_getArguments`): input options,
 * `-i <input>`, each extra input's options and `-i <path>`, `-y` (fluent adds it whenever an output is a file), `-filter_complex <graph>`,
 * then per output its options and its path. Pure.
 */
export function invocationToArgs(invocation: FfmpegInvocation): string[] {
  const args: string[] = [...invocation.inputOptions, '-i', invocation.inputPath];
  for (const input of invocation.extraInputs ?? []) args.push(...input.options, '-i', input.path);
  args.push('-y');
  if (invocation.filterComplex !== '') args.push('-filter_complex', invocation.filterComplex);
  for (const output of invocation.outputs) args.push(...output.options, output.path);
  return args;
}
