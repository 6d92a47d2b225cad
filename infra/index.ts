/**
 * The CDK constructs for a user's own app: `import { RedisDts } from 'redis-dts/cdk'` (see the README's
 * "In your own CDK app" and examples/cdk-app/app.ts).
 */
export { TASK_PLACEHOLDER, TaskMonitoring, type TaskMonitoringProps } from './monitoring.ts';
export { DEFAULT_SECRET_NAME_PREFIX, RedisDts, type RedisDtsProps, START_EVENT } from './redis-dts.ts';
export { RedisDtsStack, type RedisDtsStackProps } from './redis-dts-stack.ts';
export { REPLICATOR_CONTAINER, type ReplicatorPasswords } from './replicator-task.ts';
