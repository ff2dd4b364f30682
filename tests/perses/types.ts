// What a clonewatch Perses dashboard must be, in the types Perses' own packages publish: @perses-dev/core's
// resource envelope with each plugin's `spec` narrowed to the options type its plugin package exports.
// check.mjs makes every generated dashboard an object literal that `satisfies` these, so tsc rejects an
// unknown field, a wrong enum value (a unit, a legend position, a calculation), a missing required
// field or a malformed duration or $ref, as the Perses server's own schemas would.
import type {
  DashboardResource,
  DashboardSpec,
  DatasourceSpec,
  ListVariableSpec,
  PanelSpec,
  TextVariableDefinition,
} from '@perses-dev/core';
import type { BarChartOptions } from '@perses-dev/bar-chart-plugin';
import type { PieChartOptions } from '@perses-dev/pie-chart-plugin';
import type {
  PrometheusDatasourceSpec,
  PrometheusLabelValuesVariableOptions,
  PrometheusPromQLVariableOptions,
  PrometheusTimeSeriesQuerySpec,
} from '@perses-dev/prometheus-plugin';
import type { StatChartOptions } from '@perses-dev/stat-chart-plugin';
import type { TableOptions } from '@perses-dev/table-plugin';
import type { TimeSeriesChartOptions } from '@perses-dev/timeseries-chart-plugin';

// Each panel plugin clonewatch uses, by kind: a discriminated union, so a spec is held to its own kind's type.
type PanelPlugin =
  | { kind: 'TimeSeriesChart'; spec: TimeSeriesChartOptions }
  | { kind: 'StatChart'; spec: StatChartOptions }
  | { kind: 'Table'; spec: TableOptions }
  | { kind: 'BarChart'; spec: BarChartOptions }
  | { kind: 'PieChart'; spec: PieChartOptions };

type Query = {
  kind: 'TimeSeriesQuery';
  spec: { plugin: { kind: 'PrometheusTimeSeriesQuery'; spec: PrometheusTimeSeriesQuerySpec } };
};

type Panel = {
  kind: 'Panel';
  spec: Omit<PanelSpec, 'plugin' | 'queries'> & { plugin: PanelPlugin; queries?: Query[] };
};

type ListVariable = {
  kind: 'ListVariable';
  spec: Omit<ListVariableSpec, 'plugin'> & {
    plugin:
      | { kind: 'PrometheusLabelValuesVariable'; spec: PrometheusLabelValuesVariableOptions }
      | { kind: 'PrometheusPromQLVariable'; spec: PrometheusPromQLVariableOptions };
  };
};

export type Datasource = Omit<DatasourceSpec, 'plugin'> & {
  plugin: { kind: 'PrometheusDatasource'; spec: PrometheusDatasourceSpec };
};

export type Spec = Omit<DashboardSpec, 'panels' | 'variables' | 'datasources'> & {
  panels: Record<string, Panel>;
  variables: (ListVariable | TextVariableDefinition)[];
  datasources?: Record<string, Datasource>;
};

// The resource a Perses page or the Perses API takes.
export type Dashboard = Omit<DashboardResource, 'spec'> & { spec: Spec };

// The perses-operator's resources (perses.dev/v1alpha2): Perses' own spec under spec.config. Their
// Kubernetes side (metadata, the datasource's `client` TLS settings) is no Perses npm type.
type ObjectMeta = { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };

export type PersesDashboard = {
  apiVersion: 'perses.dev/v1alpha2';
  kind: 'PersesDashboard';
  metadata: ObjectMeta;
  spec: { config: Spec; instanceSelector?: unknown };
};

export type PersesDatasource = {
  apiVersion: 'perses.dev/v1alpha2';
  kind: 'PersesDatasource';
  metadata: ObjectMeta;
  spec: { config: Datasource; client?: unknown; instanceSelector?: unknown };
};
