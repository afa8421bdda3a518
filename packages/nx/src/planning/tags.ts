/** Values the tag templates can use. A token whose value is absent is an error, not an empty string. */
export interface TagValues {
  projectName: string;
  version?: string;
  commitSha?: string;
  shortCommitSha?: string;
  branch?: string;
  inputsHash?: string;
}

export const TAG_TOKENS = ['projectName', 'version', 'shortCommitSha', 'commitSha', 'branch', 'inputsHash'] as const;
type TagToken = (typeof TAG_TOKENS)[number];

const GIT_TOKENS: readonly TagToken[] = ['commitSha', 'shortCommitSha', 'branch'];

/** Whether a tag template uses a value that comes from git. */
export function tagUsesGit(template: string): boolean {
  return GIT_TOKENS.some((token) => template.includes(`{${token}}`));
}

// OCI distribution spec: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
const VALID_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Renders a tag template such as `{version}-{shortCommitSha}`. */
export function renderTag(template: string, values: TagValues): string {
  const rendered = template.replace(/\{([^{}]*)\}/g, (_match, token: string) => {
    if (!(TAG_TOKENS as readonly string[]).includes(token)) {
      throw new Error(`Unknown token {${token}} in tag "${template}". Known tokens: ${TAG_TOKENS.map((t) => `{${t}}`).join(', ')}.`);
    }
    const value = tokenValue(token as TagToken, values);
    if (value === undefined || value === '') {
      throw new Error(`Tag "${template}" uses {${token}}, which has no value for project "${values.projectName}".`);
    }
    return value;
  });
  if (!VALID_TAG.test(rendered)) {
    throw new Error(`Tag "${rendered}" (from "${template}") is not a valid image tag: use letters, digits, "_", "." and "-", at most 128 characters.`);
  }
  return rendered;
}

function tokenValue(token: TagToken, values: TagValues): string | undefined {
  switch (token) {
    case 'shortCommitSha':
      return values.shortCommitSha ?? values.commitSha?.slice(0, 7);
    case 'version':
      // Semver build metadata (`1.0.0+abc`) is not allowed in a tag.
      return values.version?.replace(/\+/g, '-');
    case 'branch':
      return values.branch === undefined ? undefined : sanitizeBranch(values.branch);
    default:
      return values[token];
  }
}

/** Branch names may hold characters a tag can't, e.g. `feature/login` becomes `feature-login`. */
export function sanitizeBranch(branch: string): string {
  return branch.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
}

export function versionFromPackageJson(text: string): string | undefined {
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : undefined;
}

/** `<Version>` of an SDK-style .csproj (the first one in any PropertyGroup). */
export function versionFromCsproj(text: string): string | undefined {
  return /<Version>\s*([^<\s]+)\s*<\/Version>/.exec(text)?.[1];
}

/** `version` of pyproject.toml's `[project]` table, or of `[tool.poetry]`. */
export function versionFromPyproject(text: string): string | undefined {
  let table = '';
  for (const line of text.split(/\r?\n/)) {
    const header = /^\s*\[([^\]]+)\]\s*(#.*)?$/.exec(line);
    if (header) {
      table = header[1].trim();
      continue;
    }
    if (table !== 'project' && table !== 'tool.poetry') continue;
    const match = /^\s*version\s*=\s*(["'])([^"']*)\1/.exec(line);
    if (match) return match[2];
  }
  return undefined;
}

/** The version of a project from whichever manifest it has: package.json, then .csproj, then pyproject.toml. */
export function projectVersion(manifests: { packageJson?: string; csproj?: string; pyproject?: string }): string | undefined {
  return (
    (manifests.packageJson !== undefined ? versionFromPackageJson(manifests.packageJson) : undefined) ??
    (manifests.csproj !== undefined ? versionFromCsproj(manifests.csproj) : undefined) ??
    (manifests.pyproject !== undefined ? versionFromPyproject(manifests.pyproject) : undefined)
  );
}
