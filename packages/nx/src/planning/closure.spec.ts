import { describe, expect, it } from 'vitest';
import { ModuleCycleError, moduleClosure } from './closure';
import { testGraph } from '../testing/test-graph';

describe('moduleClosure', () => {
  const graph = testGraph(
    { api: {}, util: {}, models: {}, auth: {}, unrelated: {} },
    { api: ['auth', 'models', 'npm:express'], auth: ['util', 'models'], models: ['util'], util: [] },
    { 'npm:express': { packageName: 'express', version: '4.0.0' } },
  );

  it('orders dependencies first, ties by name, the project last, without external nodes', () => {
    expect(moduleClosure(graph, 'api')).toEqual(['util', 'models', 'auth', 'api']);
  });

  it('breaks ties by name whatever order the edges are listed in', () => {
    const flat = testGraph({ app: {}, b: {}, a: {}, c: {} }, { app: ['c', 'a', 'b'] });
    expect(moduleClosure(flat, 'app')).toEqual(['a', 'b', 'c', 'app']);
  });

  it('does not follow excluded projects', () => {
    expect(moduleClosure(graph, 'api', { exclude: ['auth'] })).toEqual(['util', 'models', 'api']);
  });

  it('reports a cycle with its path', () => {
    const cyclic = testGraph({ app: {}, a: {}, b: {} }, { app: ['a'], a: ['b'], b: ['a'] });
    expect(() => moduleClosure(cyclic, 'app')).toThrow(ModuleCycleError);
    expect(() => moduleClosure(cyclic, 'app')).toThrow('a -> b -> a');
  });

  it('rejects an unknown project', () => {
    expect(() => moduleClosure(graph, 'nope')).toThrow('"nope" is not in the project graph');
  });
});
