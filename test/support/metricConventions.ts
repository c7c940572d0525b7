/**
 * What a Prometheus exposition of ours must hold to (issue 23): no `instance` label
 * (the scraper's), every metric with a written help (not one made from its name),
 * no name that stutters (`alcor_programmed_programmed_total`), `alcor_build_info`
 * at 1. Returns the violations, one line each (empty: conforming).
 */
export function metricViolations(text: string): string[] {
  const out: string[] = [];
  const helped = new Map<string, string>();
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help) {
      helped.set(help[1]!, help[2]!);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s/.exec(line);
    if (!sample) {
      out.push(`unreadable line: ${line.slice(0, 120)}`);
      continue;
    }
    const [, name, labels = ''] = sample;
    if (/[{,]instance="/.test(labels)) out.push(`${name}: carries an instance label`);
    seen.add(name!.replace(/_(bucket|sum|count)$/, ''));
  }
  for (const name of seen) {
    if (!name.startsWith('alcor_')) continue;
    const help =
      helped.get(name) ?? helped.get(`${name}_total`) ?? helped.get(name.replace(/_total$/, ''));
    if (!help) out.push(`${name}: no help`);
    else if (generatedHelp(name, help)) out.push(`${name}: help made from the name ("${help}")`);
    const words = name.replace(/_total$/, '').split('_');
    for (let i = 1; i < words.length; i++)
      if (words[i] === words[i - 1]) out.push(`${name}: "${words[i]}" twice in a row`);
  }
  if (!/^alcor_build_info\{[^}]*\} 1$/m.test(text)) out.push('alcor_build_info: missing or not 1');
  return [...new Set(out)];
}

/** A help like `alcor_controller goalStates`: the prefix and a field name, nothing written. */
function generatedHelp(name: string, help: string): boolean {
  return /^alcor_\w+ \w+$/.test(help) || help === name;
}
