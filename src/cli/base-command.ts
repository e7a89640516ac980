// What every murderctl command shares: --json, the inventory flag, typed errors mapped to
// stable exit codes, progress on stderr (stdout is for results), and consent.
import {createInterface} from 'node:readline/promises'
import {Command, Flags, type Interfaces} from '@oclif/core'
import type {EngineHooks} from '../engine/engine.js'
import type {Step} from '../engine/schema.js'
import {asMurderctlError, BugError, MurderctlError, NeedsConfirmationError} from '../errors.js'
import {type ContextOptions, type MurderContext, withMurder} from '../host/context.js'
import {loadInventory, withSshConfigFile} from '../inventory/load.js'
import type {Inventory} from '../inventory/schema.js'
import {listrSteps} from '../report/listr-progress.js'
import {renderPlan} from '../report/plan-view.js'
import {renderRollback} from '../report/rollback-view.js'
import type {RollbackResult} from '../services/runs.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export const inventoryFlag = Flags.string({
  char: 'i',
  summary: 'Inventory file (default: $MURDERCTL_INVENTORY, then ./murder.yaml).',
  helpGroup: 'GLOBAL',
})

/**
 * Flags of every command that works on hosts over SSH, defined once: how many at once, host
 * keys, the OpenSSH client config. Commands that connect to nothing show none of them.
 */
export const sshFlags = {
  concurrency: Flags.integer({summary: 'How many hosts to work on at once.', default: 8, min: 1, max: 64, helpGroup: 'SSH'}),
  'accept-new-host-keys': Flags.boolean({
    summary: 'Trust and record host keys not yet in known_hosts (never a changed one), hashed when HashKnownHosts says so.',
    default: false,
    helpGroup: 'SSH',
  }),
  'ssh-config': Flags.string({
    char: 'F',
    summary: 'OpenSSH client config to read, as ssh -F ("none": none). Default: ~/.ssh/config, then /etc/ssh/ssh_config; overrides ssh.configFile.',
    helpGroup: 'SSH',
  }),
}

/** Flags for commands that change hosts. */
export const mutatingFlags = {
  'dry-run': Flags.boolean({summary: 'Show the plan and the diff; send no mutating command to any host.', default: false}),
  yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation (needed without a terminal).', default: false}),
}

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true

  static baseFlags = {}

  /** --ssh-config, for commands that have it: applied to the inventory they load. */
  private sshConfigFlag?: string

  async init(): Promise<void> {
    await super.init()
    if (this.ctor.flags?.['ssh-config']) {
      const {flags} = await this.parse(this.ctor)
      this.sshConfigFlag = flags['ssh-config'] as string | undefined
    }
  }

  /** Progress for people: stderr, silent under --json. */
  protected progress(msg: string): void {
    if (!this.jsonEnabled()) process.stderr.write(`${msg}\n`)
  }

  protected inventory(path?: string): Inventory {
    const inv = loadInventory(path)
    return this.sshConfigFlag ? withSshConfigFile(inv, this.sshConfigFlag) : inv
  }

  /** What sshFlags set, as withMurder takes it; `progress`: the murder's log lines go to stderr too. */
  protected murderOptions(flags: {concurrency: number; 'accept-new-host-keys': boolean}, opts: {progress?: boolean} = {}): ContextOptions {
    return {concurrency: flags.concurrency, acceptNewHostKeys: flags['accept-new-host-keys'], ...(opts.progress ? {log: (m: string) => this.progress(m)} : {})}
  }

  /** Ask before acting. Never prompts without a terminal or under --json: that needs --yes. */
  protected async confirm(question: string, opts: {yes: boolean; what: string}): Promise<boolean> {
    if (opts.yes) return true
    if (this.jsonEnabled() || !process.stdin.isTTY || !process.stderr.isTTY)
      throw new NeedsConfirmationError(`${opts.what} needs confirmation and there is no terminal to ask on`, {
        hint: 're-run with --yes once you have read the plan (use --dry-run to see it)',
      })
    const rl = createInterface({input: process.stdin, output: process.stderr})
    // Ctrl-C at the prompt is a "no" (the run then stops resumably), not a crash.
    const ac = new AbortController()
    rl.on('SIGINT', () => ac.abort())
    try {
      const answer = await rl.question(`${question} [y/N] `, {signal: ac.signal})
      return /^y(es)?$/i.test(answer.trim())
    } catch (error) {
      if (!ac.signal.aborted) throw error
      process.stderr.write('\n')
      return false
    } finally {
      rl.close()
    }
  }

  /**
   * How a command runs a playbook on the operator's screen: listr2 on a terminal, plain lines
   * elsewhere; the plan shown and consented once before the first change; each diff shown by
   * `showDiff` and asked again.
   */
  protected playbookHooks(
    flags: {yes: boolean},
    diffGate: {
      question: (step: Step, diffs: Parameters<EngineHooks['confirm']>[1]) => string
      show?: (diffs: Parameters<EngineHooks['confirm']>[1], fullPath: string) => string
    },
  ): EngineHooks {
    return {
      progress: (line) => this.progress(line),
      runSteps: process.stderr.isTTY && !this.jsonEnabled() ? listrSteps : undefined,
      interruptible: true,
      consentBy: flags.yes ? '--yes' : 'prompt',
      consent: async (plan) => {
        this.progress(`\n${renderPlan(plan)}\n`)
        return this.confirm('Go ahead with this plan?', {yes: flags.yes, what: 'the plan'})
      },
      confirm: async (step, diffs, fullPath) => {
        if (diffGate.show) this.progress(`\n${diffGate.show(diffs, fullPath)}\n`)
        return this.confirm(diffGate.question(step, diffs), {yes: flags.yes, what: `step ${step.id}`})
      },
    }
  }

  /**
   * --rollback RUN, whichever command's run it undoes: its plan consented like a run's (a
   * rollback has no diff gate of its own), then the result printed alike.
   */
  protected async rollback(
    inv: Inventory,
    flags: {yes: boolean; concurrency: number; 'accept-new-host-keys': boolean},
    undo: (ctx: MurderContext, hooks: EngineHooks) => Promise<RollbackResult>,
  ): Promise<RollbackResult> {
    const r = await withMurder(inv, this.murderOptions(flags, {progress: true}), (ctx) => undo(ctx, this.playbookHooks(flags, {question: () => 'Go on?'})))
    this.log(renderRollback(r))
    return r
  }

  protected async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own errors (bad flags, --help, exit()) keep oclif's handling and codes.
    if (!(err instanceof MurderctlError) && (err.oclif || err.constructor.name === 'ExitError')) return super.catch(err)
    const e = asMurderctlError(err)
    process.exitCode = e.exitCode
    if (this.jsonEnabled()) {
      this.logJson({error: e.toJSON()})
    } else {
      process.stderr.write(`murderctl: ${e.oneLine()}\n`)
      if (e instanceof BugError && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    return undefined
  }
}
