import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MediaType, RegistryClient, RegistryError, parseReference } from '@tessera/oci';
import { startHtpasswdRegistry, startTlsRegistry } from '../../../tools/registry/auth';
import { manifestBytes, openBuffer, randomBlob } from './registry-helpers';

describe('TLS registries', () => {
  let registry: Awaited<ReturnType<typeof startTlsRegistry>>;
  beforeAll(async () => {
    registry = await startTlsRegistry();
  });
  afterAll(() => registry?.stop());

  async function pushAndRead(client: RegistryClient, host: string, repository: string): Promise<void> {
    const ref = parseReference(`${host}/${repository}:v1`);
    const config = randomBlob(64, MediaType.ociConfig);
    await client.uploadBlob(ref, config.descriptor, openBuffer(config.bytes));
    const pushed = await client.putManifest(ref, { bytes: manifestBytes(config.descriptor, []), mediaType: MediaType.ociManifest });
    expect((await client.getManifest(ref)).digest).toBe(pushed.digest);
  }

  it('works with the registry CA given per host', async () => {
    const client = new RegistryClient({ registryCertificates: { [registry.host]: registry.caPath } });
    await pushAndRead(client, registry.host, 'tls/with-ca');
    client.close();
  });

  it('fails fast with a clear TLS error when the certificate is not trusted', async () => {
    const client = new RegistryClient({ retry: { attempts: 5, baseDelayMs: 1000 } });
    const started = Date.now();
    const error = (await client.getManifest(parseReference(`${registry.host}/tls/with-ca:v1`)).catch((e: unknown) => e)) as RegistryError;
    expect(Date.now() - started).toBeLessThan(2000); // not retried: retrying cannot help
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe('TLS');
    expect(error.message).toMatch(new RegExp(`^manifest get on ${registry.host}/tls/with-ca failed: TLS: cannot verify the certificate of ${registry.host}: self[- ]signed certificate`));
    expect(error.hint).toContain('--registry-certificate');
  });

  it('skips verification for listed hosts, or all', async () => {
    for (const skipTlsVerify of [[registry.host], true]) {
      const client = new RegistryClient({ skipTlsVerify });
      await pushAndRead(client, registry.host, 'tls/skip');
      client.close();
    }
    const other = new RegistryClient({ skipTlsVerify: ['127.0.0.2'], retry: { attempts: 1 } });
    await expect(other.headManifest(parseReference(`${registry.host}/tls/skip:v1`))).rejects.toThrow(/TLS/);
  });

  it('says so when a plain-HTTP registry is spoken to over TLS', async () => {
    const plain = inject('registryHost');
    const client = new RegistryClient({ retry: { attempts: 1 } });
    const error = (await client.headBlob({ registry: plain, repository: 'a/b' }, randomBlob(1).descriptor.digest).catch((e: unknown) => e)) as RegistryError;
    expect(error.code).toBe('TLS');
    expect(error.message).toContain(`TLS handshake with ${plain} failed; if it is a plain-HTTP registry, add it to the insecure registries`);
  });

  it('combines TLS with basic auth', async () => {
    const secured = await startHtpasswdRegistry({ bob: 'pw-for-bob' }, { tls: true });
    try {
      const client = new RegistryClient({
        registryCertificates: { [secured.host]: secured.caPath! },
        credentials: { [secured.host]: { username: 'bob', password: 'pw-for-bob' } },
      });
      await pushAndRead(client, secured.host, 'tls/auth');
      client.close();
    } finally {
      await secured.stop();
    }
  });
});
