// Pushes a generated blob of SIZE_MB through the built client and prints the digest and peak RSS as JSON.
// Usage: node registry-large-push.mjs DIST_INDEX HOST REPOSITORY SIZE_MB
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';

const [distIndex, host, repository, sizeMb] = process.argv.slice(2);
const { RegistryClient } = createRequire(import.meta.url)(distIndex);
const CHUNK = 1 << 20;
const chunks = Number(sizeMb);

/** The same bytes on every call, generated a MiB at a time. */
function* content() {
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let n = 0; n < chunks; n++) {
    block.writeUInt32LE(n, 0);
    yield Buffer.from(block);
  }
}

const hash = createHash('sha256');
for (const chunk of content()) hash.update(chunk);
const descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:' + hash.digest('hex'), size: chunks * CHUNK };

const client = new RegistryClient({ insecureRegistries: [host] });
const started = Date.now();
await client.uploadBlob({ registry: host, repository }, descriptor, async () => Readable.from(content()));
const info = await client.headBlob({ registry: host, repository }, descriptor.digest);
client.close();
process.stdout.write(JSON.stringify({ digest: descriptor.digest, size: info?.size, seconds: (Date.now() - started) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
