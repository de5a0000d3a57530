/**
 * The api's schema validator compiler: TypeBox's compiled checker, like
 * @fastify/type-provider-typebox's TypeBoxValidatorCompiler, but it converts
 * only what fails the check as it came in. The library's compiler runs
 * `Value.Convert` on every query string, path and header set before checking
 * it, a schema walk and a copy per request even when, as on every submit, the
 * headers already are the strings their schema declares. Bodies are never
 * converted (JSON arrives typed; no silent coercion), as before.
 *
 * Converting a value that already passes changes nothing for the api's
 * schemas: none of their query, path or header schemas has a union that
 * conversion could read differently.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  return (value: unknown) => {
    if (validator.Check(value)) return { value };
    if (httpPart === 'body') return { error: validator.Errors(value) };
    const converted = Value.Convert(schema, value);
    if (validator.Check(converted)) return { value: converted };
    return { error: validator.Errors(converted) };
  };
};
