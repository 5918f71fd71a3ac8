// The environment the task gets: the container's own, without the memory settings the agent's launcher set for itself.

const SAVED_PREFIX = 'SPOTSNAP_SAVED_';
const UNSET = 'spotsnap-unset';

/**
 * Undoes what docker/spotsnap exported for the agent alone: each SPOTSNAP_SAVED_<NAME> holds the value <NAME>
 * had before (or "spotsnap-unset"), and is itself removed.
 */
export function taskEnvironment(agentEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...agentEnv };
  for (const [key, saved] of Object.entries(agentEnv)) {
    if (!key.startsWith(SAVED_PREFIX)) continue;
    const name = key.slice(SAVED_PREFIX.length);
    delete env[key];
    if (saved === UNSET) delete env[name];
    else env[name] = saved;
  }
  return env;
}
