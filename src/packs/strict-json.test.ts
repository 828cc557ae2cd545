import { describe, expect, it } from 'vitest';
import { jsonToPlain, JsonSyntaxError, parseStrictJson } from './strict-json.ts';

describe('strict JSON', () => {
  it('parses what JSON.parse parses, keeping key order in Maps', () => {
    const text = '{"b":1,"10":[true,false,null,-0.5e3,"x\\u00e9\\n\\"\\\\\\/"],"a":{"2":{},"1":[]}}';
    const v = parseStrictJson(text);
    expect(v).toBeInstanceOf(Map);
    expect([...(v as Map<string, unknown>).keys()]).toEqual(['b', '10', 'a']); // JSON.parse would put "10" first
    expect(jsonToPlain(v)).toEqual(JSON.parse(text));
    expect(parseStrictJson(' "\\ud83d\\ude00" ')).toBe('😀');
  });

  it.each([
    ['{"a":1,"a":2}', /duplicate key "a" at character 7/],
    ['{"a":"\\ud800"}', /lone surrogate/],
    ['"\\udc00"', /lone surrogate/],
    ['"a\u0001"', /control character/],
    ['"\\x41"', /invalid escape "\\\\x"/],
    ['01', /after the value/],
    ['1.', /after the value/],
    ['-', /unexpected "-"/],
    ['[1,]', /unexpected "]"/],
    ['{"a" 1}', /expected ':'/],
    ['{a:1}', /expected a string key/],
    ['nul', /unexpected "n"/],
    ['', /unexpected end of text/],
    ['"abc', /unterminated string/],
    ['[[[[1]]]]', /nested deeper than 3/],
  ])('refuses %j', (text, message) => {
    expect(() => parseStrictJson(text, { maxDepth: 3 })).toThrow(JsonSyntaxError);
    expect(() => parseStrictJson(text, { maxDepth: 3 })).toThrow(message);
  });

  it('survives hostile nesting without a stack overflow', () => {
    expect(() => parseStrictJson('['.repeat(1_000_000))).toThrow(/nested deeper than 64/);
  });

  it('a "__proto__" key stays data', () => {
    const plain = jsonToPlain(parseStrictJson('{"__proto__":{"polluted":true}}')) as Record<string, unknown>;
    expect(Object.keys(plain)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
  });
});
