/**
 * Access-log files of one proxy process, one writer per path shared by every listener and kept
 * across config updates. Lines are buffered and written together (at most every 50 ms, or at 64 KiB)
 * with one append-mode write, so the request path never waits on the disk and lines from several
 * worker processes sharing a file stay whole. A file that cannot be opened or written costs the
 * lines (counted), never the proxy.
 */
import { closeSync, openSync, write } from 'node:fs';

class LogFile {
  readonly #path: string;
  #fd: number | undefined;
  #lines: string[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing = false;
  written = 0;
  dropped = 0;

  constructor(path: string) {
    this.#path = path;
  }

  add(line: string): void {
    if (this.#lines.length >= 10_000) {
      this.dropped++;
      return;
    }
    this.#lines.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= 65_536) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 50).unref();
  }

  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#writing || this.#lines.length === 0) return;
    if (this.#fd === undefined) {
      try {
        this.#fd = openSync(this.#path, 'a');
      } catch {
        this.dropped += this.#lines.length;
        this.#lines = [];
        this.#bytes = 0;
        return;
      }
    }
    const n = this.#lines.length;
    const buf = Buffer.from(this.#lines.join(''));
    this.#lines = [];
    this.#bytes = 0;
    this.#writing = true;
    write(this.#fd, buf, 0, buf.length, null, (err) => {
      this.#writing = false;
      if (err) this.dropped += n;
      else this.written += n;
      if (this.#lines.length > 0) this.flush();
    });
  }

  /** Writes what is buffered, synchronously (shutdown). */
  close(): void {
    this.flush();
    if (this.#fd !== undefined && this.#fd > 2) {
      try {
        closeSync(this.#fd);
      } catch {
        // already closed
      }
    }
    this.#fd = undefined;
  }
}

/** The writers by path. */
export class LogFiles {
  readonly #files = new Map<string, LogFile>();

  /** Appends a line (ending in a newline) to a file. */
  writer(path: string): (line: string) => void {
    let f = this.#files.get(path);
    if (f === undefined) this.#files.set(path, (f = new LogFile(path)));
    const file = f;
    return (line) => file.add(line);
  }

  stats(): { written: number; dropped: number } {
    let written = 0;
    let dropped = 0;
    for (const f of this.#files.values()) {
      written += f.written;
      dropped += f.dropped;
    }
    return { written, dropped };
  }

  flush(): void {
    for (const f of this.#files.values()) f.flush();
  }

  close(): void {
    for (const f of this.#files.values()) f.close();
  }
}
