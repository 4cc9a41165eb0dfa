/**
 * The query's words, marked in messages. A word is the server's (docs/query.md): a run of
 * letters and digits, compared without case; `press*` marks words starting with `press`.
 * Fields (`device:`, `attr.`…) and negated terms mark nothing.
 */

const WORD = /[\p{L}\p{N}]+/gu;
const TOKEN = /-?"(?:[^"\\]|\\.)*"|[^\s()]+/g;
const FIELD = /^[A-Za-z_][\w.-]*(>=|<=|:|>|<|~)/;
const KEYWORDS = new Set(["AND", "OR", "NOT"]);

export interface Matcher {
  words: Set<string>;
  prefixes: string[];
}

export function matcherOf(query: string): Matcher {
  const matcher: Matcher = { words: new Set(), prefixes: [] };
  let negated = false;
  for (const token of query.match(TOKEN) ?? []) {
    if (token === "NOT") {
      negated = true;
      continue;
    }
    const skip = negated || token.startsWith("-") || KEYWORDS.has(token) || FIELD.test(token);
    negated = false;
    if (skip) continue;
    const prefix = token.endsWith("*") && !token.startsWith('"');
    const found = [...token.toLowerCase().matchAll(WORD)].map((m) => m[0]);
    if (prefix && found.length > 0) matcher.prefixes.push(found.pop() as string);
    found.forEach((word) => matcher.words.add(word));
  }
  return matcher;
}

function matches(word: string, matcher: Matcher): boolean {
  const lower = word.toLowerCase();
  return matcher.words.has(lower) || matcher.prefixes.some((p) => lower.startsWith(p));
}

export function highlighted(message: string, matcher: Matcher): DocumentFragment {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const found of message.matchAll(WORD)) {
    if (!matches(found[0], matcher)) continue;
    const start = found.index ?? 0;
    fragment.append(message.slice(at, start));
    const mark = document.createElement("mark");
    mark.textContent = found[0];
    fragment.append(mark);
    at = start + found[0].length;
  }
  fragment.append(message.slice(at));
  return fragment;
}
