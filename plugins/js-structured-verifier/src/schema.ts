// JSON Schema validation with the semantics of the Rust `jsonschema` crate's defaults
// (what the Rust `json-schema-verifier` uses), on top of @cfworker/json-schema:
//
// * the draft comes from `$schema` (exact URLs, trailing `#` ignored), 2020-12 without
//   one, and an unknown `$schema` is an error;
// * the schema itself must be valid against its draft's meta-schema;
// * `format` is an assertion in drafts 4, 6 and 7 and only an annotation in 2019-09 and
//   2020-12.
//
// The meta-schema validators do not depend on any setting, so they are built at module
// top level: that runs once, when the component is built, and the result is part of the
// component's snapshot.

import { Validator } from '@cfworker/json-schema';
import type { OutputUnit, Schema, SchemaDraft } from '@cfworker/json-schema';
import type { Json } from './extract.js';

import draft4 from './metaschemas/draft4.json';
import draft6 from './metaschemas/draft6.json';
import draft7 from './metaschemas/draft7.json';
import s2019 from './metaschemas/draft2019-09/schema.json';
import s2019Applicator from './metaschemas/draft2019-09/applicator.json';
import s2019Content from './metaschemas/draft2019-09/content.json';
import s2019Core from './metaschemas/draft2019-09/core.json';
import s2019Format from './metaschemas/draft2019-09/format.json';
import s2019MetaData from './metaschemas/draft2019-09/meta-data.json';
import s2019Validation from './metaschemas/draft2019-09/validation.json';
import s2020 from './metaschemas/draft2020-12/schema.json';
import s2020Applicator from './metaschemas/draft2020-12/applicator.json';
import s2020Content from './metaschemas/draft2020-12/content.json';
import s2020Core from './metaschemas/draft2020-12/core.json';
import s2020Format from './metaschemas/draft2020-12/format-annotation.json';
import s2020MetaData from './metaschemas/draft2020-12/meta-data.json';
import s2020Unevaluated from './metaschemas/draft2020-12/unevaluated.json';
import s2020Validation from './metaschemas/draft2020-12/validation.json';

export type Draft = '4' | '6' | '7' | '2019-09' | '2020-12';

/** `$schema` values the Rust crate recognises (after trimming trailing `#`). */
const DRAFTS: ReadonlyMap<string, Draft> = new Map([
  ['https://json-schema.org/draft/2020-12/schema', '2020-12'],
  ['https://json-schema.org/draft/2019-09/schema', '2019-09'],
  ['http://json-schema.org/draft-07/schema', '7'],
  ['http://json-schema.org/draft-06/schema', '6'],
  ['http://json-schema.org/draft-04/schema', '4'],
]);

/** cfworker has no draft 6; draft 7 only adds `if`/`then`/`else` and `$comment`. */
const ENGINE_DRAFT: Record<Draft, SchemaDraft> = {
  '4': '4',
  '6': '7',
  '7': '7',
  '2019-09': '2019-09',
  '2020-12': '2020-12',
};

function metaValidator(draft: SchemaDraft, root: unknown, vocabularies: unknown[]): Validator {
  const v = new Validator(root as Schema, draft, true);
  for (const vocabulary of vocabularies) v.addSchema(vocabulary as Schema);
  return v;
}

const META: Record<Draft, Validator> = {
  '4': metaValidator('4', draft4, []),
  '6': metaValidator('7', draft6, []),
  '7': metaValidator('7', draft7, []),
  '2019-09': metaValidator('2019-09', s2019, [
    s2019Core,
    s2019Applicator,
    s2019Validation,
    s2019MetaData,
    s2019Format,
    s2019Content,
  ]),
  '2020-12': metaValidator('2020-12', s2020, [
    s2020Core,
    s2020Applicator,
    s2020Unevaluated,
    s2020Validation,
    s2020MetaData,
    s2020Format,
    s2020Content,
  ]),
};

/** Keywords whose value is a schema, a list of schemas, or a map of schemas. */
const SCHEMA_VALUED = [
  'additionalItems',
  'additionalProperties',
  'contains',
  'contentSchema',
  'else',
  'if',
  'items',
  'not',
  'propertyNames',
  'then',
  'unevaluatedItems',
  'unevaluatedProperties',
];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const SCHEMA_MAPS = [
  '$defs',
  'definitions',
  'dependencies',
  'dependentSchemas',
  'patternProperties',
  'properties',
];

type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Calls `visit` on `schema` and every schema object inside it (by keyword, so data
 * such as `enum`, `const` or `default` values is never taken for a schema). */
function walk(schema: Json, path: string, visit: (s: JsonObject, path: string) => void): void {
  if (!isObject(schema)) return;
  visit(schema, path);
  for (const key of Object.keys(schema)) {
    const value = schema[key];
    const at = `${path}/${key}`;
    if (SCHEMA_VALUED.includes(key) && !Array.isArray(value)) walk(value ?? null, at, visit);
    if (SCHEMA_LISTS.includes(key) && Array.isArray(value)) {
      value.forEach((s, i) => walk(s, `${at}/${i}`, visit));
    }
    if (SCHEMA_MAPS.includes(key) && isObject(value)) {
      for (const name of Object.keys(value)) walk(value[name] ?? null, `${at}/${name}`, visit);
    }
  }
}

/** The draft `schema` is written for, or why it has none we know. */
export function draftOf(schema: Json): Draft {
  if (!isObject(schema) || typeof schema.$schema !== 'string') return '2020-12';
  const url = schema.$schema.replace(/#+$/, '');
  const draft = DRAFTS.get(url);
  if (draft === undefined) throw new Error(`unknown specification ${url}`);
  return draft;
}

function describe(error: OutputUnit | undefined): string {
  return error === undefined ? 'invalid' : `${error.error} (at ${error.instanceLocation})`;
}

/** Keywords whose errors only repeat the errors of their subschemas. */
const AGGREGATE = new Set([
  '$ref',
  '$recursiveRef',
  '$dynamicRef',
  'allOf',
  'additionalItems',
  'dependentSchemas',
  'else',
  'if',
  'items',
  'patternProperties',
  'prefixItems',
  'properties',
  'propertyNames',
  'then',
  'unevaluatedItems',
  'unevaluatedProperties',
]);

/** One violation: the JSON pointer of the value (`""` for the whole value) and why. */
export interface Violation {
  path: string;
  message: string;
}

/** Throws an `Error` saying why `schema` is not a valid JSON Schema of its draft (what
 * the Rust crate checks before compiling). Walking the meta-schema is the expensive part
 * of accepting a schema, so the verifier does it once, at load (`check-config`), not in
 * every fresh instance. */
export function checkSchema(schema: Json): void {
  if (typeof schema !== 'boolean' && !isObject(schema)) {
    throw new Error(`${JSON.stringify(schema)} is not of types "boolean", "object"`);
  }
  const meta = META[draftOf(schema)];
  // cfworker does not follow the 2019-09/2020-12 meta-schemas' dynamic references into
  // subschemas, so every subschema is checked against the meta-schema too.
  walk(schema, '', (sub, path) => {
    const result = meta.validate(sub);
    if (!result.valid) {
      const error = result.errors[result.errors.length - 1];
      throw new Error(`${describe(error)}${path ? ` in ${path}` : ''}`);
    }
  });
}

/** A compiled schema. */
export class CompiledSchema {
  private readonly validator: Validator;

  /** Compiles `schema` (already known to be valid: see `checkSchema`); throws an
   * `Error` when it has no draft this verifier knows. */
  constructor(schema: Json) {
    if (typeof schema !== 'boolean' && !isObject(schema)) {
      throw new Error(`${JSON.stringify(schema)} is not of types "boolean", "object"`);
    }
    const draft = draftOf(schema);
    let usable: Json = schema;
    if (draft === '2019-09' || draft === '2020-12') {
      // `format` only annotates in these drafts (the Rust crate's default): drop it.
      usable = structuredCopy(schema);
      walk(usable, '', (sub) => {
        delete sub.format;
      });
    }
    this.validator = new Validator(usable as Schema | boolean, ENGINE_DRAFT[draft], false);
  }

  /** The violations of `value`, most specific first, at most `limit`. */
  violations(value: Json, limit: number): Violation[] {
    const result = this.validator.validate(value);
    if (result.valid) return [];
    const leaves = result.errors.filter((e) => !AGGREGATE.has(e.keyword));
    const chosen = leaves.length > 0 ? leaves : result.errors;
    return chosen.slice(0, limit).map((e) => ({
      path: e.instanceLocation.replace(/^#/, ''),
      message: e.error,
    }));
  }
}

/** A deep copy of JSON data (objects built like the parser's: own keys only). */
function structuredCopy(value: Json): Json {
  if (Array.isArray(value)) return value.map(structuredCopy);
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, {
        value: structuredCopy(value[key] ?? null),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}
