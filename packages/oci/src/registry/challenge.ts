/** One challenge of a `WWW-Authenticate` header (RFC 7235), e.g. `Bearer realm="…",service="…",scope="…"`. */
export interface AuthChallenge {
  /** Lowercase: `basic`, `bearer`, … */
  scheme: string;
  /** Parameter names are lowercase. */
  params: Record<string, string>;
}

/** Parses every challenge in a `WWW-Authenticate` value; Node joins repeated headers with commas, so several may appear. */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const skip = (pattern: RegExp) => {
    while (i < text.length && pattern.test(text[i]!)) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < text.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  let current: AuthChallenge | undefined;
  while (i < text.length) {
    skip(/[\s,]/);
    if (i >= text.length) break;
    const token = readToken();
    if (!token) {
      i++; // not a token character: skip it rather than loop forever
      continue;
    }
    skip(/\s/);
    if (text[i] === '=' && current) {
      i++;
      skip(/\s/);
      let value: string;
      if (text[i] === '"') {
        i++;
        value = '';
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          value += text[i++];
        }
        i++; // closing quote
      } else {
        // Lenient: servers send unquoted URLs, which are not RFC tokens.
        const start = i;
        while (i < text.length && !/[\s,]/.test(text[i]!)) i++;
        value = text.slice(start, i);
      }
      current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      // token68 form (`Basic abc==`) carries no parameters we use; skip it
    }
  }
  return challenges;
}
