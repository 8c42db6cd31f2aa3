// A small well-formedness check for the SVG the runtime writes, shared by the plot and trainer tests.

/** Checks that every tag is closed in order (a small XML well-formedness check) and returns the tag names seen. */
export function checkBalanced(svg: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  // comments, declarations and text hold no tags here; attribute values are escaped, so '<' and '>' never appear inside them
  for (const m of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    seen.push(name!);
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else if (!selfClose) stack.push(name!);
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(", ")}`);
  // no stray '<' or '&' outside tags and entities
  const text = svg.replace(/<[^>]*>/g, "");
  if (/[<>]/.test(text)) throw new Error("a '<' or '>' outside a tag");
  if (/&(?!(amp|lt|gt|quot|#39);)/.test(text)) throw new Error("an unescaped '&'");
  return seen;
}
