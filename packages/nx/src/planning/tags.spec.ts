import { describe, expect, it } from 'vitest';
import { projectVersion, renderTag, versionFromCsproj, versionFromPyproject } from './tags';

describe('renderTag', () => {
  const values = { projectName: 'api', version: '1.2.3+build.7', commitSha: '0123456789abcdef', branch: 'feature/Login', inputsHash: 'h42' };

  it('fills every token', () => {
    expect(renderTag('{projectName}-{version}', values)).toBe('api-1.2.3-build.7');
    expect(renderTag('{shortCommitSha}', values)).toBe('0123456');
    expect(renderTag('{commitSha}', values)).toBe('0123456789abcdef');
    expect(renderTag('{branch}-{inputsHash}', values)).toBe('feature-Login-h42');
    expect(renderTag('latest', values)).toBe('latest');
  });

  it('rejects unknown tokens, missing values and invalid tags', () => {
    expect(() => renderTag('{sha}', values)).toThrow('Unknown token {sha}');
    expect(() => renderTag('{version}', { projectName: 'api' })).toThrow('{version}, which has no value');
    expect(() => renderTag('-{projectName}', values)).toThrow('not a valid image tag');
  });
});

describe('project versions', () => {
  it('reads package.json, .csproj and pyproject.toml', () => {
    expect(projectVersion({ packageJson: '{"version":"2.0.0"}' })).toBe('2.0.0');
    expect(versionFromCsproj('<Project><PropertyGroup><Version>3.1.0</Version></PropertyGroup></Project>')).toBe('3.1.0');
    expect(versionFromPyproject('[build-system]\nversion = "no"\n[project]\nname = "svc"\nversion = "0.4.0"\n')).toBe('0.4.0');
    expect(versionFromPyproject('[tool.poetry]\nversion = \'1.0\'\n')).toBe('1.0');
    expect(projectVersion({ pyproject: '[project]\nname = "x"\n' })).toBeUndefined();
  });
});
