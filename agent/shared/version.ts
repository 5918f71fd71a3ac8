// The agent's version, recorded in every manifest.
export const AGENT_VERSION = '0.1.0';
