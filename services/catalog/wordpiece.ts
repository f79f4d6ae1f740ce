import { z } from 'zod';

/**
 * BERT's WordPiece tokenizer, as a Hugging Face tokenizer.json describes it (the local embedding
 * model's, local-embedder.ts): lower-cased, accents stripped, split on whitespace and punctuation,
 * each word cut greedily into the longest pieces its vocabulary has (`##` marks a continuation),
 * between [CLS] and [SEP]. Only what that model's file uses is read; another tokenizer is refused.
 */
const tokenizerFileSchema = z.object({
  normalizer: z.object({ type: z.literal('BertNormalizer'), lowercase: z.literal(true) }),
  pre_tokenizer: z.object({ type: z.literal('BertPreTokenizer') }),
  model: z.object({
    type: z.literal('WordPiece'),
    unk_token: z.string(),
    continuing_subword_prefix: z.string(),
    max_input_chars_per_word: z.number().int().positive(),
    vocab: z.record(z.string(), z.number().int().nonnegative()),
  }),
});

export interface WordPiece {
  /** [CLS] pieces… [SEP], at most `maxTokens` ids in all */
  encode(text: string, maxTokens: number): number[];
}

// Control characters go (the normalizer's clean_text); every punctuation or symbol character is a word of its own.
const CONTROL = /[\p{Cc}\p{Cf}]/gu;
const WORDS = /[\p{L}\p{N}\p{M}]+|[^\s\p{L}\p{N}\p{M}]/gu;

export function wordPieceFrom(json: unknown): WordPiece {
  const { model } = tokenizerFileSchema.parse(json);
  const vocab = new Map(Object.entries(model.vocab));
  const id = (token: string) => {
    const found = vocab.get(token);
    if (found === undefined) throw new Error(`the tokenizer's vocabulary has no ${token}`);
    return found;
  };
  const [unk, cls, sep] = [id(model.unk_token), id('[CLS]'), id('[SEP]')];

  function pieces(word: string): number[] {
    if (word.length > model.max_input_chars_per_word) return [unk];
    const out: number[] = [];
    for (let start = 0; start < word.length; ) {
      let end = word.length;
      let found: number | undefined;
      for (; end > start; end--) {
        found = vocab.get((start > 0 ? model.continuing_subword_prefix : '') + word.slice(start, end));
        if (found !== undefined) break;
      }
      // A word with a part the vocabulary cannot spell is one unknown token, as BERT's own tokenizer has it.
      if (found === undefined) return [unk];
      out.push(found);
      start = end;
    }
    return out;
  }

  return {
    encode(text, maxTokens) {
      const normalized = text
        .replace(CONTROL, '')
        .normalize('NFD')
        .replace(/\p{Mn}/gu, '')
        .toLowerCase();
      const ids = (normalized.match(WORDS) ?? []).flatMap(pieces);
      return [cls, ...ids.slice(0, Math.max(0, maxTokens - 2)), sep];
    },
  };
}
