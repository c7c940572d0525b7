/**
 * Named errors, collected in one place (STYLE). Each carries a wire `code`, the
 * offending `field` where there is one, and whether retrying may help.
 */
export interface ErrorDetail {
  code: string;
  message: string;
  path?: string;
}

export class AlcorError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  readonly retryable: boolean;

  constructor(
    code: string,
    message: string,
    options: { field?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = options.field;
    this.retryable = options.retryable ?? false;
  }

  toDetail(): ErrorDetail {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, path: this.field };
  }
}

export class InvalidIdError extends AlcorError {
  constructor(field: string, value: unknown) {
    super(
      'id_format',
      `${field} must match ^[A-Za-z0-9_-]{1,64}$ (a NATS subject token), got ${JSON.stringify(value)?.slice(0, 80)}`,
      { field },
    );
  }
}

/** A server (NATS, Redis, Kafka) could not be reached or started. */
export class ServerUnavailableError extends AlcorError {
  readonly server: string;
  constructor(server: string, message: string, options: { cause?: unknown } = {}) {
    super('server_unavailable', `${server}: ${message}`, { retryable: true, ...options });
    this.server = server;
  }
}

/** A stream or KV bucket exists with a configuration other than the declared one. */
export class ConfigMismatchError extends AlcorError {
  constructor(what: string, differences: string[]) {
    super(
      'config_mismatch',
      `${what} exists with a different configuration: ${differences.join('; ')}. ` +
        'Delete or migrate it explicitly; it is not used as it is.',
    );
  }
}

export class ConfigError extends AlcorError {
  constructor(field: string, message: string) {
    super('invalid_config', `${field}: ${message}`, { field });
  }
}
