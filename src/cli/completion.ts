/**
 * `lambdactl completion bash|zsh`: a shell completion script made from the
 * command table, so a new command, subcommand, flag or argument choice
 * completes without anyone editing a script.
 *
 * The script is static (no lambdactl process per Tab): it completes command
 * names, subcommand words, the flags of the command on the line, the fixed
 * choices of an argument (`catalog validate|apply|show`), and file names where
 * an argument or a flag's value is a file. Commands come first on a lambdactl
 * line (flags go after them), so the command is always the first word and a
 * subcommand the second. zsh loads the same function through bashcompinit.
 */
import { flagLabel } from "./args.js";
import { ExitCodes, type CliContext, type Command, type CommandSpec, type ParsedCommand } from "./command.js";

/** Shells `lambdactl completion` writes a script for. */
export const COMPLETION_SHELLS = ["bash", "zsh"] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

/** Completes file names (the value of a flag or argument that names a file). */
const FILES = "__files__";

/** True for a flag value or an argument that names a file on this machine. */
function isFile(placeholderOrName: string | undefined): boolean {
  return placeholderOrName !== undefined && /file|path/.test(placeholderOrName);
}

/** A bash single-quoted word. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function flagWords(spec: CommandSpec): string[] {
  return Object.keys(spec.flags).map(flagLabel);
}

/** Flags that take a value, long and short forms: the word after one is its value, not a positional. */
function valuedFlagWords(spec: CommandSpec): string[] {
  return Object.entries(spec.flags)
    .filter(([, f]) => f.type === "string")
    .flatMap(([n, f]) => [flagLabel(n), ...(f.short ? [`-${f.short}`] : [])]);
}

function caseArm(pattern: string, words: readonly string[]): string {
  return words.length === 0 ? `    ${quote(pattern)}) ;;` : `    ${quote(pattern)}) printf '%s\\n' ${words.map(quote).join(" ")} ;;`;
}

function caseFunction(name: string, arms: readonly string[]): string {
  return [`${name}() {`, '  case "$1" in', ...arms, "  esac", "}"].join("\n");
}

/**
 * The bash completion script for `commands` (every top-level command; their
 * subcommands are read from them). Defines `_lambdactl` and registers it for
 * `lambdactl`.
 */
export function bashCompletion(commands: readonly Command[]): string {
  const all = commands.flatMap((c) => [c, ...(c.subcommands ?? [])]);
  const subArms = commands
    .filter((c) => (c.subcommands ?? []).length > 0)
    .map((c) => caseArm(c.spec.name, c.subcommands!.map((s) => s.spec.name.slice(c.spec.name.length + 1))));
  const flagArms = all.map((c) => caseArm(c.spec.name, flagWords(c.spec)));
  const valuedArms = all.map((c) => caseArm(c.spec.name, valuedFlagWords(c.spec)));
  const fileFlagArms = all.map((c) => caseArm(c.spec.name, Object.entries(c.spec.flags).filter(([, f]) => isFile(f.value)).map(([n]) => flagLabel(n))));
  const argArms = all.flatMap((c) =>
    c.spec.args.flatMap((a, i) => {
      const words = a.choices ?? (isFile(a.name) ? [FILES] : []);
      return words.length === 0 ? [] : [caseArm(`${c.spec.name} ${i}`, words)];
    }),
  );
  return `# bash completion for lambdactl, generated from its command table by \`lambdactl completion bash\`.
# Load it in this shell:     source <(lambdactl completion bash)
# or for every new shell:    lambdactl completion bash > ~/.local/share/bash-completion/completions/lambdactl

${caseFunction("_lambdactl_subcommands", subArms)}

${caseFunction("_lambdactl_flags", flagArms)}

${caseFunction("_lambdactl_valued_flags", valuedArms)}

${caseFunction("_lambdactl_file_flags", fileFlagArms)}

# "<command path> <index>": the words allowed for that positional argument (${FILES}: file names).
${caseFunction("_lambdactl_arg_words", argArms)}

_lambdactl_reply() {
  # One candidate per line, filtered by the word being completed; ${FILES} means file names.
  local cur="$1" w
  shift
  COMPREPLY=()
  for w in "$@"; do
    if [[ "$w" == ${FILES} ]]; then
      local IFS=$'\\n'
      COMPREPLY+=($(compgen -f -- "$cur"))
    elif [[ "$w" == "$cur"* ]]; then
      COMPREPLY+=("$w")
    fi
  done
}

_lambdactl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local prev=""
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if (( COMP_CWORD == 1 )); then
    if [[ "$cur" == -* ]]; then
      _lambdactl_reply "$cur" --help --version
    else
      _lambdactl_reply "$cur" ${commands.map((c) => quote(c.spec.name)).join(" ")} help
    fi
    return 0
  fi
  local path="\${COMP_WORDS[1]}" first=2
  if [[ "$path" == help ]]; then
    (( COMP_CWORD == 2 )) && _lambdactl_reply "$cur" ${commands.map((c) => quote(c.spec.name)).join(" ")}
    return 0
  fi
  local subs
  subs="$(_lambdactl_subcommands "$path")"
  if [[ -n "$subs" ]]; then
    local w
    for w in $subs; do
      if (( COMP_CWORD > 2 )) && [[ "\${COMP_WORDS[2]}" == "$w" ]]; then
        path="$path $w"
        first=3
        break
      fi
    done
  fi
  local IFS=$'\\n'
  # bash splits --out=file at "=": complete the value of the flag before it.
  if [[ "$prev" == = ]] && (( COMP_CWORD > 2 )); then
    prev="\${COMP_WORDS[COMP_CWORD-2]}"
  fi
  if [[ -n "$prev" ]] && _lambdactl_valued_flags "$path" | grep -qxF -- "$prev"; then
    if _lambdactl_file_flags "$path" | grep -qxF -- "$prev"; then
      _lambdactl_reply "$cur" ${FILES}
    else
      COMPREPLY=()
    fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    _lambdactl_reply "$cur" $(_lambdactl_flags "$path")
    return 0
  fi
  # The index of the positional argument being completed: words after the command path that are
  # not flags, nor the value of a flag (bash splits --grpc=host:port at = and :, which join words).
  local index=0 i word skip=0
  local valued
  valued="$(_lambdactl_valued_flags "$path")"
  for (( i = first; i < COMP_CWORD; i++ )); do
    word="\${COMP_WORDS[i]}"
    # "=" and ":" join the word after them to the one before (a flag's value, or host:port).
    case "$word" in
      = | :) skip=1; continue ;;
    esac
    if (( skip )); then skip=0; continue; fi
    case "$word" in
      -*) if printf '%s\\n' "$valued" | grep -qxF -- "$word"; then skip=1; fi; continue ;;
    esac
    index=$(( index + 1 ))
  done
  local words
  words="$(_lambdactl_arg_words "$path $index")"
  if (( first == 2 && index == 0 )) && [[ -n "$subs" ]]; then
    words="$subs"$'\\n'"$words"
  fi
  _lambdactl_reply "$cur" $words
  return 0
}

complete -F _lambdactl lambdactl
`;
}

/** The zsh completion script: the bash one, loaded through zsh's bashcompinit. */
export function zshCompletion(commands: readonly Command[]): string {
  return `#compdef lambdactl
# zsh completion for lambdactl, generated by \`lambdactl completion zsh\`.
# Load it in this shell:     source <(lambdactl completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit

${bashCompletion(commands).split("\n").filter((l) => !l.startsWith("# ")).join("\n")}`;
}

const spec: CommandSpec = {
  name: "completion",
  summary: "print a shell completion script (bash or zsh) for commands, subcommands, flags and choices",
  args: [{ name: "shell", choices: COMPLETION_SHELLS, description: "the shell to write the script for" }],
  flags: { help: { type: "boolean", short: "h", description: "print this help" } },
  notes: [
    "examples:",
    "  source <(lambdactl completion bash)          # this bash shell",
    "  lambdactl completion bash > ~/.local/share/bash-completion/completions/lambdactl",
    "  source <(lambdactl completion zsh)           # this zsh shell (add it to ~/.zshrc to keep it)",
  ].join("\n"),
};

/**
 * `lambdactl completion`.
 * @param commands the command table the script completes (read when the command runs).
 */
export function completionCommand(commands: () => readonly Command[]): Command {
  return {
    spec,
    async run(parsed: ParsedCommand, ctx: CliContext) {
      const shell = parsed.args.shell as CompletionShell;
      ctx.stdout.write(shell === "zsh" ? zshCompletion(commands()) : bashCompletion(commands()));
      return ExitCodes.ok;
    },
  };
}
