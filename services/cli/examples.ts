/**
 * Examples for every command's `--help`, by command path. The CLI tests fail for a
 * command without any, so a new command comes with its examples.
 */
import type { Command } from 'commander';

export const EXAMPLES: Record<string, string[]> = {
  placement: [
    'alcor placement                       members, loads, max/avg',
    'alcor placement --buckets | head      the bucket table',
    'alcor placement --partitions          which southbound module relays which partition',
  ],
  apply: [
    'alcor apply -f intents.yaml                           decided: accepted or rejected, per intent',
    'alcor apply -f intents.json --wait programmed         and every affected host applied',
    'echo \'{"id":"i1","kind":"vpc.delete","vpcId":"v1","spec":{}}\' | alcor apply -f -',
  ],
  topology: ['alcor topology load -f hosts.yaml', 'alcor topology show --hosts -o wide'],
  'topology load': [
    'alcor topology load -f hosts.yaml            add and change hosts',
    'alcor topology load -f hosts.yaml --prune    and delete those it no longer lists',
  ],
  'topology show': [
    'alcor topology show                          hosts per cluster and binding',
    'alcor topology show --hosts -o json          every host, for a script',
  ],
  status: ['alcor status vpc-0007', 'alcor status vpc-0007 -o yaml'],
  watch: [
    'alcor watch vpc-0007                 until Ctrl-C',
    'alcor watch vpc-0007 --count 10      the next ten statuses',
    'alcor watch vpc-0007 -o json         one JSON object per line',
  ],
  vpc: ['alcor vpc list', 'alcor vpc show vpc-0007 --at -10m'],
  'vpc list': [
    'alcor vpc list                       every VPC: revision, commits, last decided',
    'alcor vpc list --prefix vpc-00 -o wide',
    'alcor vpc list --no-headers | wc -l',
  ],
  'vpc show': [
    'alcor vpc show vpc-0007                       now',
    'alcor vpc show vpc-0007 --at 4120             as of a revision (its last at or before it)',
    'alcor vpc show vpc-0007 --at -10m             as of ten minutes ago',
    'alcor vpc show vpc-0007 --at 2026-12-06T10:00:00Z',
  ],
  replay: ['alcor replay vpc vpc-0007', 'alcor replay host h-c4-3 --from -15m'],
  'replay vpc': [
    'alcor replay vpc vpc-0007',
    'alcor replay vpc vpc-0007 --from 4100 --to 4200',
    'alcor replay vpc vpc-0007 --from -1h -o json',
  ],
  'replay host': ['alcor replay host h-c4-3', 'alcor replay host h-c4-3 --from -15m --to -5m'],
  trace: [
    'alcor trace vpc-0007-007 --vpc vpc-0007       (faster with the VPC)',
    'alcor trace vpc-0007-007 -o json',
  ],
  hosts: [
    'alcor hosts                       one row per host',
    'alcor hosts --stale -o wide       what is behind, per VPC, with clusters',
    "alcor hosts --host h-c4-3 -o json one host's VPCs for a script",
  ],
  check: [
    'alcor check                       every VPC, every host',
    'alcor check --host h-c4-3         one host against the log',
    'alcor check --vpc vpc-0007 --full from revision 0, not from snapshots',
  ],
  context: [
    'alcor context add prod --nats-url tls://nats.example:4222 --nkey ~/operator.nk --tlsca ca.crt --select',
    'alcor context ls',
    'alcor --context prod hosts --stale',
    'alcor context show            the connection a command would use, and where each part came from',
  ],
  'context add': [
    'alcor context add prod --nats-url tls://nats.example:4222 --nkey ~/operator.nk --tlsca ca.crt',
    'alcor context add jwt --nats-url nats://10.0.0.5:4222 --creds ~/ops.creds --select',
  ],
  'context use': ['alcor context use prod'],
  'context ls': ['alcor context ls', 'alcor context ls -o json'],
  'context show': ['alcor context show', 'alcor --context prod context show'],
  'context rm': ['alcor context rm prod'],
  completion: [
    'alcor completion bash > ~/.local/share/bash-completion/completions/alcor',
    'eval "$(alcor completion bash)"          in ~/.bashrc',
    'eval "$(alcor completion zsh)"           in ~/.zshrc',
  ],
  'nats-config': [
    'alcor nats-config --out /etc/nats --hosts hosts.yaml --tls-cert server.crt --tls-key server.key',
    'alcor nats-config --out ./nats --no-auth --port 4222',
  ],
  'kafka-config': [
    'alcor kafka-config --cluster a --out /etc/kafka --advertise kafka-a:9092 --tls-key-and-cert server.pem --tls-ca ca.crt',
  ],
  'kafka-acls': ['alcor kafka-acls --cluster a --brokers kafka-a:9092'],
  'tls-config': ['alcor tls-config --out ./tls --names nats,kafka-a,redis,127.0.0.1'],
  'redis-config': ['alcor redis-config --out /etc/redis --username alcor'],
};

/** The path of a command below the program (`vpc show`). */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds each command's examples to its help; returns the paths that have none. */
export function addExamples(program: Command): string[] {
  const missing: string[] = [];
  const walk = (cmd: Command): void => {
    for (const c of cmd.commands) {
      const path = commandPath(c);
      const lines = EXAMPLES[path];
      if (lines) c.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`);
      else missing.push(path);
      walk(c);
    }
  };
  walk(program);
  return missing;
}
