export { Authenticator, repositoryScope } from './auth';
export { parseWwwAuthenticate, type AuthChallenge } from './challenge';
export { RegistryClient, nextLink, type BlobInfo, type BlobUploadOptions, type ManifestLocation, type RegistryClientOptions } from './client';
export {
  CredentialResolver,
  configKeyRegistry,
  credentialFiles,
  runCredentialHelper,
  type CredentialOptions,
  type DockerConfigFile,
  type RegistryCredential,
} from './credentials';
export { Limiter } from './limiter';
export { registryImageDestination, registryImageSource } from './registry-image';
export { retryDelay, withRetry, type RetryPolicy } from './retry';
export { Transport, redactUrl, type TransportOptions } from './transport';
