/**
 * The task-type registry and the compiled kwargs validators. Schemas are
 * compiled once at start-up: validation is on every submit and every
 * delivery, so it must stay a precompiled function call.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Errors, withField } from '../errors.js';
import { builtinTaskTypes } from './builtin.js';
import type { TaskType } from './task-type.js';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class TaskRegistry {
  readonly #types = new Map<string, TaskType>();
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #ajv = addFormats(new Ajv({ allErrors: false, strict: false }));

  constructor(types: readonly TaskType[] = builtinTaskTypes) {
    for (const type of types) {
      if (this.#types.has(type.name)) throw new Error(`Task type "${type.name}" is defined twice`);
      this.#types.set(type.name, type);
      this.#validators.set(type.name, this.#ajv.compile(type.kwargs));
    }
  }

  get(name: string): TaskType | undefined {
    return this.#types.get(name);
  }

  list(): TaskType[] {
    return [...this.#types.values()];
  }

  /** The type or `CNV_UNKNOWN_TASK_TYPE` (field `type`). */
  require(name: string): TaskType {
    const type = this.#types.get(name);
    if (!type) throw withField(new Errors.UNKNOWN_TASK_TYPE(name), 'type');
    return type;
  }

  /** Throws `CNV_INVALID_KWARGS` with the field at fault, e.g. `kwargs.duration`. */
  validateKwargs(typeName: string, kwargs: unknown): void {
    const validate = this.#validators.get(typeName);
    if (!validate) throw withField(new Errors.UNKNOWN_TASK_TYPE(typeName), 'type');
    if (validate(kwargs)) return;
    const first = validate.errors?.[0];
    throw withField(new Errors.INVALID_KWARGS(describe(first)), fieldOf(first));
  }
}

function fieldOf(error: ErrorObject | undefined): string {
  if (!error) return 'kwargs';
  const path = error.instancePath.split('/').filter(Boolean);
  const missing = error.params as { missingProperty?: string; additionalProperty?: string };
  const extra = missing.missingProperty ?? missing.additionalProperty;
  if (extra) path.push(extra);
  return ['kwargs', ...path].join('.');
}

function describe(error: ErrorObject | undefined): string {
  if (!error) return 'does not match the schema';
  return `${fieldOf(error)} ${error.message ?? 'is invalid'}`;
}
