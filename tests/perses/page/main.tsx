// A clonewatch dashboard drawn by Perses' own React packages, as an app embedding Perses draws one:
// /d/<name> loads /dashboards/<name>.json (a `{kind: Dashboard}` resource, as generated) and the
// project's default PrometheusDatasource from /datasource.json, and hands both to ViewDashboard with
// the published panel and Prometheus plugins. The dashboards name no datasource: this default answers.
//
// For the test that opens it (tests/e2e/test_dashboards_render.py), window.clonewatch tells what
// Perses itself holds and drew: each variable's options and value, each time series query's state and
// result, and per panel its loading and error marks, its text (what is on screen, and what is in the
// page but scrolled away, clipped or cut short), and the text each chart drew on its canvas (ECharts
// draws axis labels and bar labels there, not in the DOM).
import React, { ReactElement, useEffect, useState } from 'react';
import ReactDOM from 'react-dom/client';
import { ThemeProvider, Typography } from '@mui/material';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter } from 'react-router-dom';
import { QueryParamProvider } from 'use-query-params';
import { ReactRouter6Adapter } from 'use-query-params/adapters/react-router-6';
import { ECharts, getInstanceByDom } from 'echarts/core';
import { ChartsProvider, generateChartsTheme, getTheme, SnackbarProvider } from '@perses-dev/components';
import { DashboardResource, GlobalDatasourceResource, TimeSeriesData } from '@perses-dev/core';
import { DatasourceApi, ViewDashboard } from '@perses-dev/dashboards';
import { dynamicImportPluginLoader, PluginRegistry, useVariableValues } from '@perses-dev/plugin-system';
import * as prometheusPlugin from '@perses-dev/prometheus-plugin';
import * as timeseriesChartPlugin from '@perses-dev/timeseries-chart-plugin';
import * as statChartPlugin from '@perses-dev/stat-chart-plugin';
import * as tablePlugin from '@perses-dev/table-plugin';
import * as barChartPlugin from '@perses-dev/bar-chart-plugin';
import * as pieChartPlugin from '@perses-dev/pie-chart-plugin';

const pluginLoader = dynamicImportPluginLoader(
  [prometheusPlugin, timeseriesChartPlugin, statChartPlugin, tablePlugin, barChartPlugin, pieChartPlugin].map((p) => ({
    resource: p.getPluginModule(),
    importPlugin: () => Promise.resolve(p),
  })),
);

const queryClient = new QueryClient({ defaultOptions: { queries: { refetchOnWindowFocus: false, retry: 0 } } });
const muiTheme = getTheme('light');
const chartsTheme = generateChartsTheme(muiTheme, {});

function datasourceApi(datasource: GlobalDatasourceResource): DatasourceApi {
  return {
    getDatasource: async () => undefined,
    getGlobalDatasource: async () => datasource,
    listDatasources: async () => [],
    listGlobalDatasources: async () => [datasource],
    buildProxyUrl: () => (datasource.spec.plugin.spec as { directUrl: string }).directUrl,
  };
}

interface Report {
  dashboard?: string;
  error?: string;
  variables: Record<string, { value: unknown; options: string[]; loading: boolean; error?: string }>;
  queries: () => unknown[];
  panels: () => unknown[];
}

declare global {
  interface Window {
    clonewatch: Report;
  }
}

window.clonewatch = { variables: {}, queries, panels };

/** Every active time series query in react-query's cache, as Perses ran it. */
function queries(): unknown[] {
  return queryClient
    .getQueryCache()
    .findAll({ type: 'active' })
    .filter((q) => String((q.queryKey[0] as { kind?: string })?.kind ?? '').startsWith('TimeSeriesQuery'))
    .map((q) => {
      const definition = q.queryKey[0] as { spec: { plugin: { spec: { query: string } } } };
      const data = q.state.data as TimeSeriesData | undefined;
      return {
        query: definition.spec.plugin.spec.query,
        status: q.state.status,
        fetching: q.state.fetchStatus !== 'idle',
        error: q.state.error ? String((q.state.error as Error).message ?? q.state.error) : null,
        executed: data?.metadata?.executedQueryString ?? null,
        series: (data?.series ?? []).map((s) => ({
          name: s.formattedName ?? s.name,
          labels: s.labels ?? {},
          points: s.values.length,
          last: s.values.length ? s.values[s.values.length - 1]![1] : null,
        })),
      };
    });
}

/** A point with a value: a number, [time, number] or {value}; null, NaN and '-' are gaps. */
function drawable(point: unknown): boolean {
  const value = Array.isArray(point) ? point[point.length - 1] : ((point as { value?: unknown })?.value ?? point);
  const v = Array.isArray(value) ? value[value.length - 1] : value;
  return v !== null && v !== undefined && v !== '-' && !Number.isNaN(Number(v));
}

/** The part of the page an element can show: the window, cut by every box around it (and its own) that clips. */
function visibleBox(start: Element | null): { left: number; top: number; right: number; bottom: number } | null {
  let [left, top, right, bottom] = [0, 0, window.innerWidth, window.innerHeight];
  for (let e = start; e; e = e.parentElement) {
    const style = getComputedStyle(e);
    if (style.visibility === 'hidden' || style.display === 'none' || style.opacity === '0') return null;
    const box = e.getBoundingClientRect();
    if (style.overflowX !== 'visible') [left, right] = [Math.max(left, box.left), Math.min(right, box.right)];
    if (style.overflowY !== 'visible') [top, bottom] = [Math.max(top, box.top), Math.min(bottom, box.bottom)];
  }
  return { left, top, right, bottom };
}

function inside(
  r: { left: number; top: number; right: number; bottom: number },
  box: ReturnType<typeof visibleBox>,
): boolean {
  return (
    !!box && r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1
  );
}

/** Whether all of a text is on screen: not clipped by a scrolling or overflow-hidden box around it, nor cut short by an ellipsis. */
function shown(node: Text): boolean {
  const range = document.createRange();
  range.selectNodeContents(node);
  const r = range.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && inside(r, visibleBox(node.parentElement));
}

/** The texts under `root`: [shown on screen, in the page but hidden (scrolled away, clipped, cut short)]. */
function texts(root: HTMLElement | null): [string[], string[]] {
  const out: [string[], string[]] = [[], []];
  if (!root) return out;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode() as Text | null; node; node = walker.nextNode() as Text | null) {
    const text = node.textContent?.trim();
    if (text) out[shown(node) ? 0 : 1].push(text);
  }
  return out;
}

type Drawn = ReturnType<ReturnType<ECharts['getZr']>['storage']['getDisplayList']>;

/** How many of a pie's four edges (left, right, top, bottom) the page does not show: cut off, or covered (by its legend). */
function pieEdgesHidden(el: HTMLElement, drawn: Drawn): number {
  const slices = drawn
    .filter((d) => d.type === 'sector')
    .map((d) => {
      const r = d.getBoundingRect().clone();
      r.applyTransform(d.getComputedTransform());
      return r;
    });
  if (!slices.length) return 0;
  const left = Math.min(...slices.map((r) => r.x)),
    right = Math.max(...slices.map((r) => r.x + r.width));
  const top = Math.min(...slices.map((r) => r.y)),
    bottom = Math.max(...slices.map((r) => r.y + r.height));
  const canvas = el.getBoundingClientRect();
  const [midX, midY] = [(left + right) / 2, (top + bottom) / 2];
  return [
    [left + 2, midY],
    [right - 2, midY],
    [midX, top + 2],
    [midX, bottom - 2],
  ].filter(([x, y]) => {
    const hit = document.elementFromPoint(canvas.left + x!, canvas.top + y!);
    return !hit || !el.contains(hit);
  }).length;
}

/** Each panel as drawn: its title, what marks loading, errors or no data in it, its text and its charts' text. */
function panels(): unknown[] {
  return Array.from(document.querySelectorAll<HTMLElement>('section[data-testid="panel"]')).map((section) => {
    const header = document.getElementById(section.getAttribute('aria-labelledby') ?? '');
    const content = section.querySelector<HTMLElement>('.MuiCardContent-root');
    const box = section.getBoundingClientRect();
    const charts = Array.from(section.querySelectorAll<HTMLElement>('[_echarts_instance_]')).map((el) => {
      const chart = getInstanceByDom(el);
      if (!chart) return { texts: [], clipped: 0, series: [] };
      const drawn = chart.getZr().storage.getDisplayList(true);
      const texts = drawn
        .map((d) => (d as unknown as { style?: { text?: unknown } }).style?.text)
        .filter((t): t is string | number => t !== undefined && t !== null && String(t).trim() !== '')
        .map(String);
      const clipped = pieEdgesHidden(el, drawn);
      const option = chart.getOption() as {
        series?: { type?: string; name?: string; data?: unknown[]; datasetIndex?: number }[];
        dataset?: { source?: unknown[] }[];
      };
      return {
        texts,
        clipped,
        series: (option.series ?? []).map((s) => {
          const data = s.data?.length ? s.data : (option.dataset?.[s.datasetIndex ?? 0]?.source ?? []);
          return { type: s.type, name: s.name, points: data.filter(drawable).length };
        }),
      };
    });
    const [text, hidden] = texts(content);
    return {
      title: header?.textContent ?? '',
      titleShown: texts(header)[1].length === 0,
      // A table that scrolls draws only the rows in view.
      scrolls: Array.from(content?.querySelectorAll<HTMLElement>('*') ?? []).some(
        (e) => /auto|scroll/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 1,
      ),
      box: { x: box.x, y: box.y, width: box.width, height: box.height },
      loading: section.querySelectorAll(
        '[aria-label="Loading..."], [aria-label="loading"], .MuiSkeleton-root, .MuiCircularProgress-root',
      ).length,
      errors: Array.from(section.querySelectorAll('[aria-label="panel errors"], .MuiAlert-root')).map(
        (e) => e.textContent ?? 'error',
      ),
      text,
      hidden,
      charts,
    };
  });
}

/** The dashboard's own title, and (not drawn) Perses' variable state for the report. */
function Title({ name }: { name: string }): ReactElement {
  const state = useVariableValues();
  window.clonewatch.variables = Object.fromEntries(
    Object.entries(state)
      .filter(([key]) => !key.startsWith('__'))
      .map(([key, s]) => [
        key,
        {
          value: s.value,
          options: (s.options ?? []).map((o) => o.value),
          loading: s.loading,
          error: s.error ? String(s.error.message ?? s.error) : undefined,
        },
      ]),
  );
  return <Typography variant="h2">{name}</Typography>;
}

function App(): ReactElement | null {
  const [loaded, setLoaded] = useState<{ dashboard: DashboardResource; datasource: GlobalDatasourceResource }>();
  useEffect(() => {
    const name = window.location.pathname.replace(/^\/d\//, '').replace(/\/$/, '');
    Promise.all([fetch(`/dashboards/${name}.json`), fetch('/datasource.json')])
      .then(async ([d, ds]) => {
        if (!d.ok || !ds.ok) throw new Error(`dashboard ${name}: ${d.status}, datasource: ${ds.status}`);
        const dashboard = (await d.json()) as DashboardResource;
        const datasource: GlobalDatasourceResource = {
          kind: 'GlobalDatasource',
          metadata: { name: 'prometheus' },
          spec: { default: true, plugin: { kind: 'PrometheusDatasource', spec: await ds.json() } },
        };
        window.clonewatch.dashboard = dashboard.metadata.name;
        setLoaded({ dashboard, datasource });
      })
      .catch((e: Error) => {
        window.clonewatch.error = e.message;
      });
  }, []);
  if (!loaded) return null;
  return (
    <PluginRegistry pluginLoader={pluginLoader}>
      <ViewDashboard
        dashboardResource={loaded.dashboard}
        datasourceApi={datasourceApi(loaded.datasource)}
        dashboardTitleComponent={<Title name={loaded.dashboard.spec.display?.name ?? loaded.dashboard.metadata.name} />}
        isReadonly={true}
        isVariableEnabled={true}
        isDatasourceEnabled={false}
      />
    </PluginRegistry>
  );
}

ReactDOM.createRoot(document.getElementById('root')!).render(
  <React.StrictMode>
    <ThemeProvider theme={muiTheme}>
      <ChartsProvider chartsTheme={chartsTheme}>
        <SnackbarProvider anchorOrigin={{ vertical: 'bottom', horizontal: 'right' }} variant="default" content="">
          <QueryClientProvider client={queryClient}>
            <BrowserRouter>
              <QueryParamProvider adapter={ReactRouter6Adapter}>
                <App />
              </QueryParamProvider>
            </BrowserRouter>
          </QueryClientProvider>
        </SnackbarProvider>
      </ChartsProvider>
    </ThemeProvider>
  </React.StrictMode>,
);
