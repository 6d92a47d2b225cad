/** A command line we cannot run: printed with a pointer to the command's --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string;
  constructor(message: string, command: string) {
    super(message);
    this.command = command;
  }
}
