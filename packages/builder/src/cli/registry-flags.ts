import {
  parsePlatform,
  RegistryClient,
  registryImageDestination,
  registryImageSource,
  type Platform,
  type RegistryClientOptions,
  type RegistryTransportAccess,
  type TransportReference,
} from '@tessera/oci';
import { UsageError, type FlagSpec, type ParsedFlags } from './flags';

/** Flags every command that talks to registries takes, with the names Kaniko and skopeo users know. */
export const REGISTRY_FLAGS: readonly FlagSpec[] = [
  { name: 'insecure-registry', type: 'list', valueName: 'HOST', description: 'Registry to reach over plain HTTP' },
  { name: 'skip-tls-verify', type: 'boolean', description: 'Do not check registry TLS certificates' },
  { name: 'registry-certificate', type: 'map', valueName: 'HOST=CA.pem', description: 'CA certificate to trust for a registry' },
  { name: 'username', type: 'string', valueName: 'USER', description: 'Registry user name (for every registry of this command)' },
  { name: 'password', type: 'string', valueName: 'PASSWORD', env: 'TESSERA_PASSWORD', secret: true, description: 'Registry password' },
  { name: 'platform', type: 'string', valueName: 'OS/ARCH[/VARIANT]', description: 'Platform to pick from a multi-platform image (default: this host)' },
  { name: 'verbose', short: 'v', type: 'boolean', description: 'Show every registry request' },
];

export interface RegistryFlagValues {
  client: RegistryClient;
  access: RegistryTransportAccess;
  platform?: Platform;
}

/** Build the registry client the flags describe; credentials apply to the registries of `references`. */
export function registryFromFlags(flags: ParsedFlags, references: readonly TransportReference[], log: (line: string) => void): RegistryFlagValues {
  const username = flags.string('username');
  // a TESSERA_PASSWORD left in the environment is ignored without --username; a --password is not
  const password = username === undefined ? undefined : flags.string('password');
  if (username === undefined && flags.given.has('password')) throw new UsageError('--password needs --username');
  if (username !== undefined && password === undefined) throw new UsageError('--username needs --password (or TESSERA_PASSWORD)');
  const options: RegistryClientOptions = {
    insecureRegistries: flags.list('insecure-registry'),
    skipTlsVerify: flags.boolean('skip-tls-verify'),
    registryCertificates: flags.map('registry-certificate'),
  };
  if (flags.boolean('verbose')) options.log = log;
  if (username !== undefined && password !== undefined) {
    const credentials: Record<string, { username: string; password: string }> = {};
    for (const ref of references) if (ref.transport === 'docker') credentials[ref.reference.registry] = { username, password };
    options.credentials = credentials;
  }
  const platformText = flags.string('platform');
  const client = new RegistryClient(options);
  return {
    client,
    access: {
      source: (reference) => registryImageSource(client, reference),
      destination: (reference) => registryImageDestination(client, reference),
    },
    ...(platformText !== undefined ? { platform: parsePlatform(platformText) } : {}),
  };
}
