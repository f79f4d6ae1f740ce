/** Small helpers for messages a person reads. */

/** "a" or "an" before a word, by its first letter: Forge's own words (kinds, cycle names) need no exceptions like "an hour". */
export function withArticle(word: string): string {
  return `${/^[aeiou]/i.test(word) ? 'an' : 'a'} ${word}`;
}

/**
 * A workflow type as a person reads it, with its article: `improveWorkflow` → "an improve cycle
 * (improveWorkflow)", `toolCallWorkflow` → "a tool call cycle (toolCallWorkflow)"; a type not
 * named that way is "a workflow of type X".
 */
export function workflowTypeInWords(type: string): string {
  const stem = /^([a-z][A-Za-z]*)Workflow$/.exec(type)?.[1];
  if (!stem) return `a workflow of type ${type}`;
  return `${withArticle(stem.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`))} cycle (${type})`;
}
