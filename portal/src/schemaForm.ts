// A form generated from an app's JSON Schema: one control per property, with the schema's
// defaults, limits and enums; the browser checks limits too, and values come back typed.

import type { JsonSchema } from "./api";
import { field, h, uid } from "./dom";

interface Control {
  name: string;
  element: HTMLInputElement | HTMLSelectElement;
  read: () => unknown;
}

function typeOf(schema: JsonSchema): string {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  return type ?? (schema.enum ? "enum" : "string");
}

function hintOf(schema: JsonSchema): string | undefined {
  const limits: string[] = [];
  const low = schema.minimum ?? schema.exclusiveMinimum;
  const high = schema.maximum ?? schema.exclusiveMaximum;
  if (low !== undefined && high !== undefined) limits.push(`from ${low} to ${high}`);
  else if (low !== undefined) limits.push(`at least ${low}`);
  else if (high !== undefined) limits.push(`at most ${high}`);
  if (schema.default !== undefined) limits.push(`default ${JSON.stringify(schema.default)}`);
  const text = [schema.description, limits.length ? `(${limits.join(", ")})` : ""].filter(Boolean).join(" ");
  return text || undefined;
}

function controlFor(name: string, schema: JsonSchema, required: boolean): Control {
  const id = uid(`param-${name}`);
  const type = typeOf(schema);
  if (schema.enum) {
    const select = h(
      "select",
      { id, name },
      schema.enum.map((value) =>
        h("option", { value: JSON.stringify(value), selected: JSON.stringify(value) === JSON.stringify(schema.default) }, String(value)),
      ),
    ) as HTMLSelectElement;
    return { name, element: select, read: () => JSON.parse(select.value) };
  }
  if (type === "boolean") {
    const box = h("input", { id, name, type: "checkbox", checked: schema.default === true }) as HTMLInputElement;
    return { name, element: box, read: () => box.checked };
  }
  if (type === "number" || type === "integer") {
    const input = h("input", {
      id,
      name,
      type: "number",
      inputmode: type === "integer" ? "numeric" : "decimal",
      min: schema.minimum ?? schema.exclusiveMinimum,
      max: schema.maximum ?? schema.exclusiveMaximum,
      step: schema.multipleOf ?? (type === "integer" ? 1 : "any"),
      value: typeof schema.default === "number" ? schema.default : undefined,
      required,
    }) as HTMLInputElement;
    return {
      name,
      element: input,
      read: () => (input.value === "" ? undefined : type === "integer" ? parseInt(input.value, 10) : Number(input.value)),
    };
  }
  const input = h("input", {
    id,
    name,
    type: "text",
    minlength: schema.minLength,
    maxlength: schema.maxLength,
    pattern: schema.pattern,
    value: typeof schema.default === "string" ? schema.default : undefined,
    required,
  }) as HTMLInputElement;
  return { name, element: input, read: () => (input.value === "" ? undefined : input.value) };
}

export interface SchemaForm {
  element: HTMLElement;
  /** The parameters, or null after showing the browser's own message on the first bad field. */
  values: () => Record<string, unknown> | null;
}

export function schemaForm(schema: JsonSchema, legendText: string): SchemaForm {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const controls = Object.entries(properties).map(([name, property]) => controlFor(name, property, required.has(name)));
  const element = h(
    "fieldset",
    { class: "schema-form" },
    h("legend", {}, legendText),
    controls.length
      ? controls.map((control) => field(properties[control.name].title ?? control.name.replace(/_/g, " "), control.element, hintOf(properties[control.name])))
      : h("p", { class: "hint" }, "This app has no parameters."),
  );
  return {
    element,
    values: () => {
      const values: Record<string, unknown> = {};
      for (const control of controls) {
        if (control.element instanceof HTMLInputElement && !control.element.reportValidity()) return null;
        const value = control.read();
        if (value !== undefined) values[control.name] = value;
      }
      return values;
    },
  };
}
