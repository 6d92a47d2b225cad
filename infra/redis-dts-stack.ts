import {
  FlowLogDestination,
  type ISecurityGroup,
  type IVpc,
  type SubnetSelection,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib/core';
import type { Construct } from 'constructs';
import { acknowledgeAcceptedFindings } from './nag-acknowledgements.ts';
import { RedisDts, type RedisDtsProps } from './redis-dts.ts';
import { vpcFromContext } from './vpc-from-context.ts';

export interface RedisDtsStackProps extends StackProps, Omit<RedisDtsProps, 'vpc'> {
  /**
   * The VPC the Redis servers are in. Absent: the VPC named by context (vpc-from-context.ts), or else
   * the stack creates one (two AZs, private subnets behind
   * one NAT gateway, flow logs), which suits a trial with servers you create in it.
   */
  vpc?: IVpc;
  vpcSubnets?: SubnetSelection;
  securityGroups?: ISecurityGroup[];
}

export class RedisDtsStack extends Stack {
  readonly dts: RedisDts;

  constructor(scope: Construct, id: string, props: RedisDtsStackProps = {}) {
    super(scope, id, props);
    const fromContext = props.vpc ? undefined : vpcFromContext(this);
    const vpc = props.vpc ?? fromContext?.vpc ?? this.ownVpc();
    const securityGroups = props.securityGroups ?? fromContext?.securityGroups;
    this.dts = new RedisDts(this, 'RedisDts', { ...props, vpc, securityGroups });
    acknowledgeAcceptedFindings(this.dts);

    new CfnOutput(this, 'StateMachineArn', { value: this.dts.stateMachine.stateMachineArn });
    new CfnOutput(this, 'TableName', { value: this.dts.table.tableName });
    new CfnOutput(this, 'EventBusName', { value: this.dts.eventBus.eventBusName });
    new CfnOutput(this, 'StartTaskRuleName', { value: this.dts.startRule.ruleName });
    new CfnOutput(this, 'DashboardName', { value: this.dts.monitoring.dashboard.dashboardName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.dts.monitoring.alarmTopic.topicArn });
  }

  private ownVpc(): IVpc {
    return new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 1,
      flowLogs: {
        all: {
          destination: FlowLogDestination.toCloudWatchLogs(
            new LogGroup(this, 'VpcFlowLogs', {
              retention: RetentionDays.ONE_MONTH,
              removalPolicy: RemovalPolicy.DESTROY,
            }),
          ),
        },
      },
    });
  }
}
