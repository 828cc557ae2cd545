// OpenAI CLIP's byte-level BPE tokenizer (the 49408-token vocabulary of SD 1.x/2.x text
// encoders), matching open_clip's SimpleTokenizer id for id: ftfy-style width fixes, HTML
// unescaping, whitespace cleanup, lower-casing, its regex split, then BPE with </w> word ends.

export const START_OF_TEXT = 49406;
export const END_OF_TEXT = 49407;
export const CONTEXT_LENGTH = 77;

/**
 * Byte → printable unicode char, as GPT-2/CLIP define it (printable bytes map to
 * themselves). Returns the table indexed by byte and the chars in the order of the
 * reference's dict, which is the order of the vocabulary's first 256 entries.
 */
function bytesToUnicode(): { table: string[]; order: string[] } {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table: string[] = new Array(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i])));
  return { table, order: cs.map((c) => String.fromCodePoint(c)) };
}

// HTML entities open_clip unescapes (html.unescape, applied twice). Named entities beyond
// these are rare in prompts; numeric ones are handled generally.
const NAMED_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  eacute: 'é',
  egrave: 'è',
};

function htmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? m;
  });
}

// ftfy.fix_text's width fix: full-width forms (U+FF01–FF5E) and the ideographic space
// become their ASCII equivalents. (Full NFKC would also rewrite ligatures etc., which
// ftfy leaves alone.)
function fixCharacterWidth(s: string): string {
  return s.replace(/[\uff01-\uff5e\u3000]/g, (c) =>
    c === '\u3000' ? ' ' : String.fromCharCode(c.charCodeAt(0) - 0xfee0),
  );
}

const SPLIT = /<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

export class ClipTokenizer {
  private readonly byteEncoder: string[];
  private readonly byteDecoder: Map<string, number>;
  private readonly encoder = new Map<string, number>();
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly textEncoder = new TextEncoder();

  /** @param mergesText the contents of bpe_simple_vocab_16e6.txt (decompressed) */
  constructor(mergesText: string) {
    const { table, order } = bytesToUnicode();
    this.byteEncoder = table;
    this.byteDecoder = new Map(table.map((ch, b) => [ch, b]));
    const lines = mergesText.split('\n');
    // First line is a header; CLIP uses the first 48894 merges (49152 − 256 − 2).
    const merges = lines.slice(1, 49152 - 256 - 2 + 1).map((l) => l.split(' '));
    if (merges.length !== 48894 || merges.some((m) => m.length !== 2)) {
      throw new Error(`CLIP vocabulary: expected 48894 merges, found ${merges.length} well-formed lines`);
    }
    const vocab = [...order, ...order.map((c) => c + '</w>'), ...merges.map((m) => m.join(''))];
    vocab.push('<start_of_text>', '<end_of_text>');
    vocab.forEach((tok, i) => {
      this.encoder.set(tok, i);
      this.decoder[i] = tok;
    });
    merges.forEach((m, i) => this.ranks.set(`${m[0]} ${m[1]}`, i));
    this.cache.set('<start_of_text>', [START_OF_TEXT]);
    this.cache.set('<end_of_text>', [END_OF_TEXT]);
  }

  get vocabSize(): number {
    return this.encoder.size;
  }

  /**
   * The id of one vocabulary entry, as transformers' CLIPTokenizer.convert_tokens_to_ids
   * looks a token up in vocab.json (undefined when it is not an entry). This is how a pad
   * token is resolved: SD 2.x pads with "!", the vocabulary's first entry (id 0), whereas
   * encoding "!" as text gives the end-of-word token "!</w>" (id 256).
   */
  tokenId(token: string): number | undefined {
    if (token === '<|startoftext|>') return START_OF_TEXT;
    if (token === '<|endoftext|>') return END_OF_TEXT;
    return this.encoder.get(token);
  }

  /** The token as text (bytes decoded, end-of-word marker dropped), for showing nearest words. */
  decodeToken(id: number): string {
    const tok = this.decoder[id];
    if (tok === undefined) throw new RangeError(`token id ${id} outside the vocabulary`);
    if (id >= START_OF_TEXT) return tok;
    const bytes = [...tok.replace('</w>', '')].map((ch) => this.byteDecoder.get(ch) ?? 0x3f);
    return new TextDecoder().decode(Uint8Array.from(bytes));
  }

  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = [...word];
    let parts = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // Merge every occurrence of the best pair, left to right.
      const a = parts[best];
      const b = parts[best + 1];
      const next: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(parts[i]);
      }
      parts = next;
    }
    const ids = parts.map((p) => {
      const id = this.encoder.get(p);
      if (id === undefined) throw new Error(`BPE produced a token outside the vocabulary: ${p}`);
      return id;
    });
    this.cache.set(word, ids);
    return ids;
  }

  /** Text → ids without start/end tokens. */
  encode(text: string): number[] {
    let t = fixCharacterWidth(text.normalize('NFC'));
    t = htmlUnescape(htmlUnescape(t)).trim();
    t = t.replace(/\s+/g, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of t.matchAll(SPLIT)) {
      const word = [...this.textEncoder.encode(m[0])].map((b) => this.byteEncoder[b]).join('');
      ids.push(...this.bpe(word));
    }
    return ids;
  }

  /** [start, …ids, end], truncated to `length` (end kept last) and padded with end-of-text. */
  tokenize(text: string, length = CONTEXT_LENGTH): Int32Array {
    const ids = [START_OF_TEXT, ...this.encode(text), END_OF_TEXT];
    if (ids.length > length) {
      ids.length = length;
      ids[length - 1] = END_OF_TEXT;
    }
    const out = new Int32Array(length).fill(END_OF_TEXT);
    out.set(ids);
    return out;
  }
}
