import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushBusyboxBase } from '../../tools/images/index';
import {
  Buildah,
  buildWithTessera,
  compareImages,
  configFields,
  formatDifferences,
  isAllowed,
  loadCases,
  runExpectation,
  Workspace,
  type BuiltImage,
  type ConformanceCase,
} from './harness';

const registryHost = inject('registryHost');
const cases = loadCases();
const CASE_TIMEOUT = 180_000;

let workspace: Workspace;
let buildah: Buildah;
let baseRef: string;
/** Reference images, built once per run and shared by the layout and push comparisons. */
const references = new Map<string, Promise<BuiltImage>>();

beforeAll(async () => {
  workspace = await Workspace.create();
  buildah = await Buildah.create(workspace);
  baseRef = (await pushBusyboxBase(registryHost, 'conformance/busybox')).reference;
}, 120_000);

afterAll(async () => {
  await workspace?.dispose();
});

function reference(kase: ConformanceCase): Promise<BuiltImage> {
  let pending = references.get(kase.name);
  if (!pending) {
    pending = buildah.build(kase, baseRef, workspace);
    references.set(kase.name, pending);
  }
  return pending;
}

async function checkExpectations(kase: ConformanceCase, image: BuiltImage, builder: string): Promise<void> {
  if (kase.expect?.run) {
    const stdout = await runExpectation(kase, image);
    expect(stdout, `${builder}: stdout of ${JSON.stringify(kase.expect.run)}`).toBe(kase.expect.stdout ?? '');
  }
  for (const [field, value] of Object.entries(kase.expect?.config ?? {})) {
    // A field the case allows to differ is a known buildah divergence: its expected value is tessera's.
    if (builder === 'buildah' && isAllowed({ key: `config.${field}`, message: '' }, kase.allow)) continue;
    expect(configFields(image.config)[field as keyof ReturnType<typeof configFields>], `${builder}: config.${field}`).toEqual(
      value,
    );
  }
}

async function checkAgainstReference(kase: ConformanceCase, push: boolean): Promise<void> {
  const built = await buildWithTessera(kase, { baseRef, registryHost, workspace, push });
  if (kase.reference !== 'none') {
    const differences = await compareImages(kase, await reference(kase), built.image);
    if (differences.length > 0) throw new Error(`${formatDifferences(kase.name, differences)}\n  command: ${built.command}`);
  }
  await checkExpectations(kase, built.image, 'tessera');
}

describe('Dockerfile conformance: tessera against buildah', () => {
  it('has a corpus of at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  for (const kase of cases) {
    describe(kase.name, () => {
      if (kase.reference !== 'none') {
        it('builds with buildah and meets its own expectations (validates the case)', async () => {
          await checkExpectations(kase, await reference(kase), 'buildah');
        }, CASE_TIMEOUT);
      }

      it('tessera --no-push --oci-layout-path matches', () => checkAgainstReference(kase, false), CASE_TIMEOUT);

      if (kase.push) {
        it('tessera --destination (pushed) matches', () => checkAgainstReference(kase, true), CASE_TIMEOUT);
      }
    });
  }
});
