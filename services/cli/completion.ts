/**
 * `alcor completion bash|zsh`: a completion script made from the command tree
 * itself, so it never lags behind: subcommands and flags at each level (after
 * the global flags, which complete anywhere), and the choices of `-o`.
 */
import type { Command, Option } from 'commander';

interface Level {
  path: string;
  words: string[];
}

const flagsOf = (options: readonly Option[]): string[] =>
  options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));

/** Every command path with the words that may follow it. */
export function completionLevels(program: Command): Level[] {
  const levels: Level[] = [];
  const walk = (cmd: Command, path: string[]): void => {
    const subs = cmd.commands.filter((c) => !(c as { _hidden?: boolean })._hidden);
    levels.push({
      path: path.join(' '),
      words: [...subs.map((c) => c.name()), ...flagsOf(cmd.options), '--help'],
    });
    for (const c of subs) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return levels;
}

export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const globalFlags = flagsOf(program.options).join(' ');
  // Global flags that take a value: the word after them is that value.
  const valued = flagsOf(program.options.filter((o) => o.required || o.optional)).join('|');
  const cases = completionLevels(program)
    .map((l) => `    ${JSON.stringify(l.path)}) words=${JSON.stringify(l.words.join(' '))} ;;`)
    .join('\n');
  const name = program.name();
  const body = `# ${name} completion (${shell}): eval "$(${name} completion ${shell})"
_${name}_complete() {
  local cur prev path="" w i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ "$prev" == "-o" || "$prev" == "--output" ]]; then
    COMPREPLY=( $(compgen -W "table wide json yaml" -- "$cur") )
    return
  fi
  # The command path: the words before this one that are not flags or their values.
  for (( i = 1; i < COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${valued}) (( i++ )) ;;
      -*) ;;
      *) path="\${path:+$path }$w" ;;
    esac
  done
  case "$path" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words ${globalFlags}" -- "$cur") )
}
`;
  return shell === 'bash'
    ? `${body}complete -F _${name}_complete ${name}\n`
    : `autoload -U +X bashcompinit && bashcompinit\n${body}complete -F _${name}_complete ${name}\n`;
}
