// Structured logs the host keeps with the call. The host bounds the bytes one call may
// log (`log`, stdout and stderr together; 64 KiB by default) and stops a call past it,
// so log summaries rather than whole inputs. Field values are converted with `String`.
//
// Before the host is bound (module top level, which runs at build time, or plain Node)
// records go to `console.error`, so plugin code runs unchanged in unit tests.
import { host } from './host.js';
function emit(level, message, fields) {
    const pairs = [];
    if (fields !== undefined) {
        const keys = Object.keys(fields);
        for (let i = 0; i < keys.length; i++)
            pairs.push([keys[i], String(fields[keys[i]])]);
    }
    if (host.log !== undefined) {
        host.log(level, String(message), pairs);
    }
    else {
        const extra = pairs.map(([k, v]) => ` ${k}=${v}`).join('');
        console.error(`[${level}] ${message}${extra}`);
    }
}
export function trace(message, fields) {
    emit('trace', message, fields);
}
export function debug(message, fields) {
    emit('debug', message, fields);
}
export function info(message, fields) {
    emit('info', message, fields);
}
export function warn(message, fields) {
    emit('warn', message, fields);
}
export function error(message, fields) {
    emit('error', message, fields);
}
