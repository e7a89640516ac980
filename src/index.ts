// murderctl as a library entry: oclif's runner, for programs that embed the CLI.
export {run} from '@oclif/core'
