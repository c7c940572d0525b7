/**
 * Alcor's goal-state schema (package `alcor.schema`, infra/aca/proto/alcor), as
 * the ACA bridge sends and reads it: plain objects with the .proto's field names
 * and enums by name, the way the protobuf loader gives them. Only what the bridge
 * fills in is typed; every field is optional on the way out (proto3 leaves a
 * default value off the wire).
 */

export type AlcorResourceType =
  'VPC' | 'SUBNET' | 'PORT' | 'NEIGHBOR' | 'SECURITYGROUP' | 'DHCP' | 'ROUTER' | 'GATEWAY';
export type AlcorOperationType = 'INFO' | 'CREATE' | 'UPDATE' | 'GET' | 'DELETE';
export type AlcorOperationStatus =
  'SUCCESS' | 'FAILURE' | 'INVALID_ARG' | 'PENDING' | 'OUT_OF_ORDER';
export type AlcorUpdateType = 'DELTA' | 'FULL';
export type AlcorProtocol = 'TCP' | 'UDP' | 'ICMP' | 'HTTP' | 'ARP';

/** Fields 1–4 of every configuration the bridge sends. */
export interface AlcorConfigurationBase {
  revision_number?: number;
  request_id?: string;
  id?: string;
  update_type?: AlcorUpdateType;
}

export interface AlcorVpcConfiguration extends AlcorConfigurationBase {
  project_id?: string;
  name?: string;
  cidr?: string;
  tunnel_id?: number;
  gateway_ids?: string[];
}

export interface AlcorSubnetConfiguration extends AlcorConfigurationBase {
  vpc_id?: string;
  name?: string;
  cidr?: string;
  tunnel_id?: number;
  gateway?: { ip_address?: string; mac_address?: string };
  dhcp_enable?: boolean;
}

export interface AlcorPortConfiguration extends AlcorConfigurationBase {
  vpc_id?: string;
  name?: string;
  mac_address?: string;
  admin_state_up?: boolean;
  host_info?: { ip_address?: string; mac_address?: string };
  fixed_ips?: Array<{ subnet_id?: string; ip_address?: string }>;
  security_group_ids?: Array<{ id?: string }>;
}

export interface AlcorNeighborConfiguration extends AlcorConfigurationBase {
  vpc_id?: string;
  name?: string;
  mac_address?: string;
  host_ip_address?: string;
  fixed_ips?: Array<{
    neighbor_type?: 'L2' | 'L3';
    subnet_id?: string;
    ip_address?: string;
    tunnel_id?: number;
  }>;
}

export interface AlcorSecurityGroupRule {
  operation_type?: AlcorOperationType;
  security_group_id?: string;
  id?: string;
  direction?: 'EGRESS' | 'INGRESS';
  ethertype?: 'IPV4' | 'IPV6';
  protocol?: AlcorProtocol;
  port_range_min?: number;
  port_range_max?: number;
  remote_ip_prefix?: string;
  remote_group_id?: string;
}

export interface AlcorSecurityGroupConfiguration extends AlcorConfigurationBase {
  vpc_id?: string;
  name?: string;
  security_group_rules?: AlcorSecurityGroupRule[];
}

export interface AlcorDhcpConfiguration extends AlcorConfigurationBase {
  subnet_id?: string;
  mac_address?: string;
  ipv4_address?: string;
  port_host_name?: string;
}

export interface AlcorRoutingRule {
  operation_type?: AlcorOperationType;
  id?: string;
  name?: string;
  destination?: string;
  next_hop_ip?: string;
  priority?: number;
}

export interface AlcorRouterConfiguration extends AlcorConfigurationBase {
  subnet_routing_tables?: Array<{ subnet_id?: string; routing_rules?: AlcorRoutingRule[] }>;
}

/** Every `<X>State`: an operation on one configuration. */
export interface AlcorState<C extends AlcorConfigurationBase = AlcorConfigurationBase> {
  operation_type?: AlcorOperationType;
  configuration?: C;
}

/** GoalStateV2's maps, by resource type (each keyed by resource id). */
export const ALCOR_STATE_MAPS = {
  VPC: 'vpc_states',
  SUBNET: 'subnet_states',
  PORT: 'port_states',
  DHCP: 'dhcp_states',
  NEIGHBOR: 'neighbor_states',
  SECURITYGROUP: 'security_group_states',
  ROUTER: 'router_states',
  GATEWAY: 'gateway_states',
} as const satisfies Record<AlcorResourceType, string>;
export type AlcorStateMap = (typeof ALCOR_STATE_MAPS)[AlcorResourceType];

export type AlcorGoalStateV2 = {
  format_version?: number;
  host_resources?: Record<string, { resources?: Array<{ type?: AlcorResourceType; id?: string }> }>;
} & { [M in AlcorStateMap]?: Record<string, AlcorState> };

export interface AlcorOperationStatusEntry {
  resource_id?: string;
  resource_type?: AlcorResourceType;
  operation_type?: AlcorOperationType;
  operation_status?: AlcorOperationStatus;
  /** Microseconds. */
  dataplane_programming_time?: number;
  network_configuration_time?: number;
  state_elapse_time?: number;
}

export interface AlcorGoalStateOperationReply {
  format_version?: number;
  operation_statuses?: AlcorOperationStatusEntry[];
  /** Microseconds for the whole message. */
  message_total_operation_time?: number;
}

export interface AlcorHostRequest {
  format_version?: number;
  state_requests?: Array<{
    request_type?: 'ON_DEMAND' | 'AGENT_RESTARTED';
    request_id?: string;
    tunnel_id?: number;
    source_ip?: string;
    source_port?: number;
    destination_ip?: string;
    destination_port?: number;
    ethertype?: 'IPV4' | 'IPV6';
    protocol?: AlcorProtocol;
  }>;
}

export interface AlcorHostRequestReply {
  format_version?: number;
  operation_statuses?: Array<{ request_id?: string; operation_status?: AlcorOperationStatus }>;
  total_operation_time?: number;
}
