/**
 * Calls and byte streams between the engine's process and a rootfs worker, over Node's IPC
 * channel (advanced serialization, so Buffers cross as bytes). Streams are credit-based: a sender
 * has at most WINDOW chunks unacknowledged, so a slow disk on one side never piles a layer up in
 * the other's memory.
 */
import { Readable } from 'node:stream';
import { ERROR_CODES, LadingError, isLadingError, type ErrorCode } from '../errors.ts';

const CHUNK = 256 * 1024;
const WINDOW = 8;

export interface WireError {
  message: string;
  code?: string;
  hint?: string;
  details?: Record<string, unknown>;
  stack?: string;
}

export type Message =
  | { t: 'call'; id: number; method: string; args: unknown[] }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number; error: WireError }
  | { t: 'event'; id: number; name: string; payload: unknown }
  | { t: 'abort'; id: number }
  | { t: 'chunk'; stream: number; data: Uint8Array }
  | { t: 'end'; stream: number }
  | { t: 'fail'; stream: number; error: WireError }
  | { t: 'credit'; stream: number; n: number }
  | { t: 'cancel'; stream: number };

/** The process-like end we talk through: a ChildProcess in the engine, `process` in the worker. */
export interface Endpoint {
  send?(message: Message, callback?: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: Message) => void): unknown;
  connected?: boolean;
}

export function toWire(err: unknown): WireError {
  if (isLadingError(err)) return { message: err.message, code: err.code, hint: err.hint, details: err.details, stack: err.stack };
  const e = err as Error;
  return { message: e?.message ?? String(err), stack: e?.stack };
}

export function fromWire(w: WireError): Error {
  if (w.code && w.code in ERROR_CODES) {
    return new LadingError(w.code as ErrorCode, w.message, { hint: w.hint, details: w.details });
  }
  const err = new Error(w.message);
  if (w.stack) err.stack = w.stack;
  return err;
}

export interface CallContext {
  signal: AbortSignal;
  emit(name: string, payload: unknown): void;
}

export type Handler = (args: unknown[], ctx: CallContext) => Promise<unknown>;

interface Outgoing {
  credits: number;
  wake?: () => void;
  cancelled: boolean;
}

interface Incoming {
  /** Set once someone asked for the stream. */
  deliver?: (m: Message) => void;
  /** Chunks that arrived before anyone asked for the stream. */
  early: Message[];
  stream?: Readable;
}

export class Peer {
  private readonly ep: Endpoint;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; onEvent?(name: string, payload: unknown): void }>();
  private readonly handlers = new Map<string, Handler>();
  private readonly running = new Map<number, AbortController>();
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Incoming>();
  /** Streams we cancelled: chunks already on the way are dropped, not kept. */
  private readonly dropped = new Set<number>();
  private closedError?: Error;

  /** `idBase` keeps the two sides' call and stream ids apart (1 in the engine, 1e9 in the worker). */
  constructor(ep: Endpoint, idBase: number) {
    this.ep = ep;
    this.nextId = idBase;
    ep.on('message', (m) => this.onMessage(m));
  }

  private send(m: Message): void {
    if (this.ep.connected === false || !this.ep.send) return;
    this.ep.send(m);
  }

  handle(method: string, handler: Handler): void {
    this.handlers.set(method, handler);
  }

  /** Fail every pending call (the other side is gone). */
  close(err: Error): void {
    this.closedError = err;
    for (const call of this.calls.values()) call.reject(err);
    this.calls.clear();
    for (const inc of this.incoming.values()) inc.stream?.destroy(err);
    this.incoming.clear();
    for (const out of this.outgoing.values()) {
      out.cancelled = true;
      out.wake?.();
    }
  }

  call(method: string, args: unknown[], options: { signal?: AbortSignal; onEvent?(name: string, payload: unknown): void } = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => this.send({ t: 'abort', id });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => options.signal?.removeEventListener('abort', onAbort);
      this.calls.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        onEvent: options.onEvent,
      });
      this.send({ t: 'call', id, method, args });
      if (options.signal?.aborted) onAbort();
    });
  }

  /** A new stream id; send the call naming it before calling `sendStream`, so the other side is waiting. */
  newStreamId(): number {
    return this.nextId++;
  }

  /** Pump `input` to the other side as stream `id`, respecting its credits. */
  async sendStream(id: number, input: Readable): Promise<void> {
    const state: Outgoing = { credits: WINDOW, cancelled: false };
    this.outgoing.set(id, state);
    try {
      for await (const raw of input as AsyncIterable<Buffer>) {
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
        for (let off = 0; off < chunk.length; off += CHUNK) {
          while (state.credits <= 0 && !state.cancelled) await new Promise<void>((r) => (state.wake = r));
          if (state.cancelled) {
            input.destroy();
            return;
          }
          state.credits--;
          this.send({ t: 'chunk', stream: id, data: chunk.subarray(off, off + CHUNK) });
        }
      }
      this.send({ t: 'end', stream: id });
    } catch (err) {
      this.send({ t: 'fail', stream: id, error: toWire(err) });
    } finally {
      this.outgoing.delete(id);
    }
  }

  /** The stream the other side sends as `id`. */
  receiveStream(id: number): Readable {
    let inc = this.incoming.get(id);
    if (!inc) {
      inc = { early: [] };
      this.incoming.set(id, inc);
    }
    let owed = 0;
    let ended = false;
    const stream = new Readable({
      highWaterMark: CHUNK * 2,
      read: () => {
        if (owed > 0) {
          this.send({ t: 'credit', stream: id, n: owed });
          owed = 0;
        }
      },
      destroy: (err, cb) => {
        if (!ended) {
          this.send({ t: 'cancel', stream: id });
          this.dropped.add(id);
        }
        this.incoming.delete(id);
        cb(err);
      },
    });
    const deliver = (m: Message): void => {
      if (m.t === 'chunk') {
        const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        if (stream.push(data)) this.send({ t: 'credit', stream: id, n: 1 });
        else owed++;
      } else if (m.t === 'end') {
        ended = true;
        this.incoming.delete(id);
        stream.push(null);
      } else if (m.t === 'fail') {
        ended = true;
        this.incoming.delete(id);
        stream.destroy(fromWire(m.error));
      }
    };
    inc.stream = stream;
    inc.deliver = deliver;
    for (const m of inc.early.splice(0)) deliver(m);
    return stream;
  }

  private onMessage(m: Message): void {
    switch (m.t) {
      case 'call':
        void this.serve(m.id, m.method, m.args);
        return;
      case 'abort':
        this.running.get(m.id)?.abort(new LadingError(ERROR_CODES.INTERRUPTED, 'the build was cancelled'));
        return;
      case 'result':
      case 'error': {
        const call = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (m.t === 'result') call?.resolve(m.value);
        else call?.reject(fromWire(m.error));
        return;
      }
      case 'event':
        this.calls.get(m.id)?.onEvent?.(m.name, m.payload);
        return;
      case 'credit': {
        const out = this.outgoing.get(m.stream);
        if (out) {
          out.credits += m.n;
          out.wake?.();
        }
        return;
      }
      case 'cancel': {
        const out = this.outgoing.get(m.stream);
        if (out) {
          out.cancelled = true;
          out.wake?.();
        }
        return;
      }
      case 'chunk':
      case 'end':
      case 'fail': {
        if (this.dropped.has(m.stream)) {
          if (m.t !== 'chunk') this.dropped.delete(m.stream);
          return;
        }
        let inc = this.incoming.get(m.stream);
        if (!inc) {
          inc = { early: [] };
          this.incoming.set(m.stream, inc);
        }
        if (inc.deliver) inc.deliver(m);
        else inc.early.push(m);
        return;
      }
    }
  }

  private async serve(id: number, method: string, args: unknown[]): Promise<void> {
    const handler = this.handlers.get(method);
    const controller = new AbortController();
    this.running.set(id, controller);
    try {
      if (!handler) throw new Error(`no handler for ${method}`);
      const value = await handler(args, { signal: controller.signal, emit: (name, payload) => this.send({ t: 'event', id, name, payload }) });
      this.send({ t: 'result', id, value });
    } catch (err) {
      this.send({ t: 'error', id, error: toWire(err) });
    } finally {
      this.running.delete(id);
    }
  }
}
