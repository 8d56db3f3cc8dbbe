// Structured logs the host keeps with the call. The host bounds the bytes one call may
// log (`log`, stdout and stderr together; 64 KiB by default) and stops a call past it,
// so log summaries rather than whole inputs. Field values are converted with `String`.
//
// Before the host is bound (module top level, which runs at build time, or plain Node)
// records go to `console.error`, so plugin code runs unchanged in unit tests.

import type { Level } from 'arbiter:plugin/log@0.2.0';
import { host } from './host.js';

export type Fields = Readonly<Record<string, unknown>>;

function emit(level: Level, message: string, fields: Fields | undefined): void {
  const pairs: Array<[string, string]> = [];
  if (fields !== undefined) {
    const keys = Object.keys(fields);
    for (let i = 0; i < keys.length; i++) pairs.push([keys[i]!, String(fields[keys[i]!])]);
  }
  if (host.log !== undefined) {
    host.log(level, String(message), pairs);
  } else {
    const extra = pairs.map(([k, v]) => ` ${k}=${v}`).join('');
    console.error(`[${level}] ${message}${extra}`);
  }
}

export function trace(message: string, fields?: Fields): void {
  emit('trace', message, fields);
}

export function debug(message: string, fields?: Fields): void {
  emit('debug', message, fields);
}

export function info(message: string, fields?: Fields): void {
  emit('info', message, fields);
}

export function warn(message: string, fields?: Fields): void {
  emit('warn', message, fields);
}

export function error(message: string, fields?: Fields): void {
  emit('error', message, fields);
}
