// A strict JSON parser for files we must not trust (safetensors headers, concept files,
// pack manifests). `JSON.parse` keeps the last of two duplicate keys without a word, which
// lets a file show one tensor to one reader and another to the next; this parser refuses
// duplicates, bounds the nesting depth (no stack overflow on `[[[[…`), rejects lone
// surrogate escapes, and keeps object key order exactly as written (JS objects reorder
// integer-like keys), by returning objects as Maps.
import { PackError } from '../domain/errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObjectMap;
export type JsonObjectMap = Map<string, JsonValue>;

export class JsonSyntaxError extends PackError {
  constructor(
    message: string,
    /** Character index in the text where the problem was found. */
    readonly position: number,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

export interface StrictJsonOptions {
  /** Deepest nesting of arrays/objects accepted (default 64). */
  maxDepth?: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export function parseStrictJson(text: string, options: StrictJsonOptions = {}): JsonValue {
  const maxDepth = options.maxDepth ?? 64;
  let pos = 0;

  const fail = (message: string, at = pos): never => {
    throw new JsonSyntaxError(`${message} at character ${at}`, at);
  };
  const skipWs = () => {
    while (pos < text.length && WS.has(text.charCodeAt(pos))) pos++;
  };
  const describe = (at: number) => (at >= text.length ? 'end of text' : JSON.stringify(text[at]));

  const parseString = (): string => {
    // pos is at the opening quote.
    pos++;
    let out = '';
    let runStart = pos;
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(runStart, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(runStart, pos);
      const e = text[pos + 1];
      if (e === 'u') {
        const unit = readHex4(pos + 2);
        pos += 6;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          // A high surrogate must be followed by an escaped low surrogate.
          if (text[pos] !== '\\' || text[pos + 1] !== 'u') fail('lone surrogate in \\u escape');
          const low = readHex4(pos + 2);
          if (low < 0xdc00 || low > 0xdfff) fail('lone surrogate in \\u escape');
          pos += 6;
          out += String.fromCharCode(unit, low);
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          fail('lone surrogate in \\u escape');
        } else {
          out += String.fromCharCode(unit);
        }
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        pos += 2;
      } else {
        fail(`invalid escape ${e === undefined ? 'at end of text' : JSON.stringify('\\' + e)}`);
      }
      runStart = pos;
    }
  };

  const readHex4 = (at: number): number => {
    const hex = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape', at);
    return parseInt(hex, 16);
  };

  const parseValue = (depth: number): JsonValue => {
    skipWs();
    if (pos >= text.length) fail('unexpected end of text');
    const c = text[pos];
    if (c === '{') {
      if (depth >= maxDepth) fail(`nested deeper than ${maxDepth}`);
      pos++;
      const map: JsonObjectMap = new Map();
      skipWs();
      if (text[pos] === '}') {
        pos++;
        return map;
      }
      for (;;) {
        skipWs();
        if (text[pos] !== '"') fail(`expected a string key, found ${describe(pos)}`);
        const keyAt = pos;
        const key = parseString();
        if (map.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
        skipWs();
        if (text[pos] !== ':') fail(`expected ':', found ${describe(pos)}`);
        pos++;
        map.set(key, parseValue(depth + 1));
        skipWs();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return map;
        }
        fail(`expected ',' or '}', found ${describe(pos)}`);
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail(`nested deeper than ${maxDepth}`);
      pos++;
      const arr: JsonValue[] = [];
      skipWs();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWs();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail(`expected ',' or ']', found ${describe(pos)}`);
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    NUMBER_RE.lastIndex = pos;
    const m = NUMBER_RE.exec(text);
    if (m) {
      pos += m[0].length;
      return Number(m[0]);
    }
    return fail(`unexpected ${describe(pos)}`);
  };

  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail(`unexpected ${describe(pos)} after the value`);
  return value;
}

/** Maps → plain objects (own data properties only, so a "__proto__" key stays a key). */
export function jsonToPlain(value: JsonValue): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) {
      Object.defineProperty(out, k, { value: jsonToPlain(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (Array.isArray(value)) return value.map(jsonToPlain);
  return value;
}
