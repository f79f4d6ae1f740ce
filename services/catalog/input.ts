import type { z } from 'zod';
import { InvalidInputError } from '../../domain/errors.ts';

/** zod at the boundary, failures as a typed error that names what was invalid. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success)
    throw new InvalidInputError(what, parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  return parsed.data;
}
